//! Splits one JSON object into its top-level members, raw key and value slices, without allocating.
//!
//! Owns JSON syntax only: the whole text is validated (strings and escapes, numbers, literals,
//! nesting, nothing trailing) while nothing is built. It decodes no values: the venue files hand the
//! slices they need to serde_json, which reads flat values without allocating. It exists because
//! serde_json's own skipping (`RawValue`, `IgnoredAny`) keeps a heap stack for values nested two
//! deep, which cost one allocation per book, trade or kline frame.

/// Deepest nesting accepted, the top-level object included. The scanner recurses once per level,
/// so this bounds its stack; serde_json builds values under the same limit.
const MAX_DEPTH: usize = 128;

/// Why a text is not one well-formed JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub(super) struct ScanError {
    /// What is wrong, e.g. `expected ':'`.
    pub(super) what: &'static str,
    /// Byte offset of the offending input.
    pub(super) at: usize,
}

/// The top-level members of the JSON object `text`, in order, as `(key, value)`: `key` is the raw
/// text between the key's quotes (escapes left as written: venues never escape field names),
/// `value` the raw JSON text of the value. An error ends the iteration. What follows the object is
/// checked only once the last member has been taken, so drain the iterator to validate everything.
pub(super) fn members(text: &str) -> Members<'_> {
    Members {
        cursor: Cursor { text, pos: 0 },
        state: State::Start,
        lazy: None,
    }
}

/// The raw values of `keys` in the object `text` (`None` where absent), after validating all of
/// it. A wanted key given twice is an error (at the end of its second member), as it is for
/// serde's derived `Deserialize`.
pub(super) fn pick<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
) -> Result<[Option<&'a str>; N], ScanError> {
    pick_from(members(text), keys)
}

/// As [`pick`], except that when the top-level member `lazy` holds an object or array, that value is only
/// delimited: its brackets must pair up and its strings be well-formed, the rest is not checked. For a frame's
/// data payload, which its decoder parses, and so validates, anyway: the frame is then walked once, not twice.
/// The caller validates the lazy value, or the whole text, before acting on it.
pub(super) fn pick_lazy<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
    lazy: &'static str,
) -> Result<[Option<&'a str>; N], ScanError> {
    let mut members = members(text);
    members.lazy = Some(lazy);
    pick_from(members, keys)
}

/// How [`pick_data`] finds where a frame's data payload ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// Presume it from the frame's end when the members after the payload are plain ([`pick_split`]), so the
    /// payload is walked only by its decoder; delimit it where that cannot be done.
    Presume,
    /// Always delimit it ([`pick_lazy`]): for a second look at a frame whose presumed payload was refused.
    Delimit,
}

/// [`pick_lazy`] or, with [`Split::Presume`], [`pick_split`] first.
pub(super) fn pick_data<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
    lazy: &'static str,
    split: Split,
) -> Result<[Option<&'a str>; N], ScanError> {
    match split {
        Split::Presume => {
            pick_split(text, keys, lazy).map_or_else(|| pick_lazy(text, keys, lazy), Ok)
        }
        Split::Delimit => pick_lazy(text, keys, lazy),
    }
}

/// As [`pick_lazy`], without walking the value of `lazy` at all: the members before it are scanned as usual, the
/// members after it are found from the end of the text (only plain ones: numbers, literals, strings without
/// escapes, as venues put there) and then scanned forwards, and the value is what lies between. `None` where that
/// does not work out (a member after the value holds a container or an escaped string, `lazy` is absent or not
/// a container, anything malformed): the caller delimits instead, which also finds any error.
///
/// The value returned for `lazy` is then only presumed: everything around it is valid, so the whole text is valid
/// JSON exactly when that slice is one JSON value, which the decoder's parse settles. A member after the payload
/// holding a container is the one way to presume wrong, and then the slice carries trailing members, which a
/// parse refuses; the caller looks again with [`Split::Delimit`] before it counts a refusal.
pub(super) fn pick_split<'a, const N: usize>(
    text: &'a str,
    keys: [&str; N],
    lazy: &str,
) -> Option<[Option<&'a str>; N]> {
    let mut values = [None; N];
    let mut take = |key: &str, value: &'a str| keep(&keys, &mut values, key, value).then_some(());
    let mut cursor = Cursor { text, pos: 0 };
    if !cursor.open().ok()? {
        return None;
    }
    let start = loop {
        if cursor.peek() != Some(b'"') {
            return None;
        }
        let key = cursor.string().ok()?;
        cursor.skip_whitespace();
        if !cursor.eat(b':') {
            return None;
        }
        cursor.skip_whitespace();
        if same_key(key.as_bytes(), lazy.as_bytes()) {
            break cursor.pos;
        }
        let from = cursor.pos;
        cursor.value(1).ok()?;
        take(key, &text[from..cursor.pos])?;
        if !cursor.separator(b'}').ok()? {
            return None;
        }
    };
    if !matches!(cursor.peek(), Some(b'{' | b'[')) {
        return None;
    }
    let end = payload_end(text.as_bytes())?;
    if end <= start {
        return None;
    }
    take(lazy, &text[start..end])?;
    let tail = Members {
        cursor: Cursor { text, pos: end },
        state: State::Rest,
        lazy: None,
    };
    for member in tail {
        let (key, value) = member.ok()?;
        take(key, value)?;
    }
    Some(values)
}

/// Reading the object `text` backwards over its last members while they are plain (numbers, literals, strings
/// without escapes): the position just after the `}` or `]` that precedes them, the presumed end of a container
/// value. At most eight members; `None` at anything else. Only a proposal: [`pick_split`] checks it forwards.
pub(super) fn payload_end(text: &[u8]) -> Option<usize> {
    let mut pos = text.len();
    let back_whitespace = |pos: &mut usize| {
        while *pos > 0 && matches!(text[*pos - 1], b' ' | b'\t' | b'\n' | b'\r') {
            *pos -= 1;
        }
    };
    // A plain string ending at `pos` (its closing quote at pos - 1): the position of its opening quote.
    let back_string = |pos: usize| {
        let inner = text.get(..pos.checked_sub(1)?)?;
        let open = inner.iter().rposition(|&b| b == b'"')?;
        (!inner[open + 1..].contains(&b'\\')).then_some(open)
    };
    back_whitespace(&mut pos);
    if pos == 0 || text[pos - 1] != b'}' {
        return None;
    }
    pos -= 1;
    for _ in 0..8 {
        back_whitespace(&mut pos);
        match text.get(pos.checked_sub(1)?)? {
            b'}' | b']' => return Some(pos),
            b'"' => pos = back_string(pos)?,
            _ => {
                let plain = text[..pos]
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                    .count();
                if plain == 0 {
                    return None;
                }
                pos -= plain;
            }
        }
        back_whitespace(&mut pos);
        if text.get(pos.checked_sub(1)?)? != &b':' {
            return None;
        }
        pos -= 1;
        back_whitespace(&mut pos);
        if text.get(pos.checked_sub(1)?)? != &b'"' {
            return None;
        }
        pos = back_string(pos)?;
        back_whitespace(&mut pos);
        if text.get(pos.checked_sub(1)?)? != &b',' {
            return None;
        }
        pos -= 1;
    }
    None
}

fn pick_from<'a, const N: usize>(
    mut members: Members<'a>,
    keys: [&str; N],
) -> Result<[Option<&'a str>; N], ScanError> {
    let mut values = [None; N];
    while let Some(member) = members.next() {
        let (key, value) = member?;
        if !keep(&keys, &mut values, key, value) {
            return Err(ScanError {
                what: "duplicate key",
                at: members.cursor.pos,
            });
        }
    }
    Ok(values)
}

/// Puts `value` in the slot of `key` when `key` is wanted; false when that slot was already taken (a wanted key
/// given twice).
#[inline]
fn keep<'a, const N: usize>(
    keys: &[&str; N],
    values: &mut [Option<&'a str>; N],
    key: &str,
    value: &'a str,
) -> bool {
    for (wanted, slot) in keys.iter().zip(values) {
        if same_key(wanted.as_bytes(), key.as_bytes()) && slot.replace(value).is_some() {
            return false;
        }
    }
    true
}

/// `a == b`, without a call to `memcmp` for keys of up to eight bytes (every key a venue decoder asks for): each
/// member of a frame is compared with every wanted key, and the library call cost more than the rest of the scan.
/// For every reader of member keys (this scan, [`super::plain`], [`super::envelope`]).
#[inline]
pub(super) fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 8 {
        return a == b;
    }
    // Built a byte at a time: a copy of a length not known here would be a library call again.
    let word = |bytes: &[u8]| {
        bytes
            .iter()
            .fold(0_u64, |word, &byte| word << 8 | u64::from(byte))
    };
    word(a) == word(b)
}

/// Every text a one-byte damage makes of `frame`: each byte removed, and each byte replaced by one that matters to
/// JSON (texts that are no longer UTF-8 left out). For the tests of what the scan and the decoders refuse.
#[cfg(test)]
pub(super) fn one_byte_damages(frame: &str) -> Vec<String> {
    let mut damaged = Vec::new();
    for at in 0..frame.len() {
        let mut bytes = frame.as_bytes().to_vec();
        bytes.remove(at);
        damaged.extend(String::from_utf8(bytes).ok());
        for &byte in b"\"\\{}[]:,-.0e \x01" {
            let mut bytes = frame.as_bytes().to_vec();
            bytes[at] = byte;
            damaged.extend(String::from_utf8(bytes).ok());
        }
    }
    damaged
}

/// Checks that `text` is one well-formed JSON object.
pub(super) fn validate(text: &str) -> Result<(), ScanError> {
    members(text).try_for_each(|member| member.map(drop))
}

/// Checks that `text` is one well-formed JSON value of any kind (a payload may be an array).
pub(super) fn validate_value(text: &str) -> Result<(), ScanError> {
    let mut cursor = Cursor { text, pos: 0 };
    cursor.skip_whitespace();
    cursor.value(0)?;
    cursor.end()
}

/// Iterator returned by [`members`].
pub(super) struct Members<'a> {
    cursor: Cursor<'a>,
    state: State,
    /// The top-level key whose object or array value is delimited, not validated.
    lazy: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum State {
    /// Before the opening brace.
    Start,
    /// After a member: a comma or the closing brace comes next.
    Rest,
    /// After the end, or after an error.
    Done,
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a str, &'a str), ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = &mut self.cursor;
        let more = match self.state {
            State::Done => return None,
            State::Start => cursor.open(),
            State::Rest => cursor.separator(b'}'),
        };
        let item = match more {
            Ok(true) => cursor.member(1, self.lazy).map(Some),
            Ok(false) => cursor.end().map(|()| None),
            Err(err) => Err(err),
        };
        self.state = match item {
            Ok(Some(_)) => State::Rest,
            _ => State::Done,
        };
        item.transpose()
    }
}

/// A position in the text. It only ever stops on an ASCII byte or at the end, so it always sits on
/// a char boundary and slicing `text` at it cannot panic.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn rest(&self) -> &'a [u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn error(&self, what: &'static str) -> ScanError {
        ScanError { what, at: self.pos }
    }

    /// Consumes `byte` if it comes next.
    #[inline]
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.pos += 1;
        }
        next
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Enters the top-level object; false when it is empty.
    fn open(&mut self) -> Result<bool, ScanError> {
        self.skip_whitespace();
        if !self.eat(b'{') {
            return Err(self.error("expected '{'"));
        }
        self.skip_whitespace();
        Ok(!self.eat(b'}'))
    }

    /// After an item of the container that ends with `close`: true when another item follows,
    /// false when the container ends here.
    #[inline]
    fn separator(&mut self, close: u8) -> Result<bool, ScanError> {
        self.skip_whitespace();
        if self.eat(b',') {
            self.skip_whitespace();
            Ok(true)
        } else if self.eat(close) {
            Ok(false)
        } else if close == b'}' {
            Err(self.error("expected ',' or '}'"))
        } else {
            Err(self.error("expected ',' or ']'"))
        }
    }

    /// Only whitespace may follow the top-level object.
    fn end(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.error("trailing characters"))
        }
    }

    /// One `"key": value` of an object nested `depth` deep, returned raw; a container under the key `lazy` is
    /// delimited only.
    #[inline]
    fn member(
        &mut self,
        depth: usize,
        lazy: Option<&str>,
    ) -> Result<(&'a str, &'a str), ScanError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        let key = self.string()?;
        self.skip_whitespace();
        if !self.eat(b':') {
            return Err(self.error("expected ':'"));
        }
        self.skip_whitespace();
        let start = self.pos;
        if lazy == Some(key) && matches!(self.peek(), Some(b'{' | b'[')) {
            self.delimit(depth)?;
        } else {
            self.value(depth)?;
        }
        Ok((key, &self.text[start..self.pos]))
    }

    /// Skips one value inside `depth` containers.
    #[inline]
    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.container(depth, b'}'),
            Some(b'[') => self.container(depth, b']'),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("expected a value")),
        }
    }

    /// Skips an object or array, its opening bracket next, that closes with `close`.
    fn container(&mut self, depth: usize, close: u8) -> Result<(), ScanError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            if close == b'}' {
                self.member(depth + 1, None)?;
            } else {
                self.value(depth + 1)?;
            }
            if !self.separator(close)? {
                return Ok(());
            }
        }
    }

    /// Skips an object or array, its opening bracket next, inside `depth` containers, checking only that its
    /// brackets pair up (within [`MAX_DEPTH`]) and that its strings are well-formed.
    fn delimit(&mut self, depth: usize) -> Result<(), ScanError> {
        // Bit `i` tells whether the container opened `i` levels above the innermost one is an object.
        let mut objects: u128 = 0;
        let mut open = 0;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated container")),
                Some(b'"') => {
                    self.string()?;
                }
                Some(byte @ (b'{' | b'[')) => {
                    if depth + open >= MAX_DEPTH {
                        return Err(self.error("nesting too deep"));
                    }
                    objects = (objects << 1) | u128::from(byte == b'{');
                    open += 1;
                    self.pos += 1;
                }
                Some(byte @ (b'}' | b']')) => {
                    if (objects & 1 == 1) != (byte == b'}') {
                        return Err(self.error("mismatched bracket"));
                    }
                    objects >>= 1;
                    open -= 1;
                    self.pos += 1;
                    if open == 0 {
                        return Ok(());
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Skips a string, its opening quote next, and returns the raw text between the quotes.
    #[inline]
    fn string(&mut self) -> Result<&'a str, ScanError> {
        let open = self.pos;
        self.pos += 1;
        loop {
            self.pos += plain_run(self.rest());
            match self.peek() {
                None => {
                    return Err(ScanError {
                        what: "unterminated string",
                        at: open,
                    });
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(&self.text[open + 1..self.pos - 1]);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape()?;
                }
                Some(0..=0x1f) => return Err(self.error("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Skips what follows a backslash in a string.
    fn escape(&mut self) -> Result<(), ScanError> {
        let hex_digits = match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 0,
            Some(b'u') => 4,
            _ => return Err(self.error("invalid escape")),
        };
        self.pos += 1;
        for _ in 0..hex_digits {
            if !self.peek().is_some_and(|byte| byte.is_ascii_hexdigit()) {
                return Err(self.error("invalid escape"));
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static str) -> Result<(), ScanError> {
        if !self.rest().starts_with(word.as_bytes()) {
            return Err(self.error("invalid literal"));
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; a leading zero followed by more
    /// digits is left for the caller to reject as a missing separator.
    #[inline]
    fn number(&mut self) -> Result<(), ScanError> {
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits()?;
        }
        Ok(())
    }

    /// Skips one or more decimal digits.
    #[inline]
    fn digits(&mut self) -> Result<(), ScanError> {
        let count = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if count == 0 {
            return Err(self.error("invalid number"));
        }
        self.pos += count;
        Ok(())
    }
}

/// How many bytes at the start of `bytes` a string can hold as they are: anything but `"`, `\` and control
/// characters. Eight bytes at a time (a byte-wise "has zero" test on a `u64`): prices and stream names are mostly
/// ordinary bytes, and this loop is the hottest of the ingest path.
pub(super) fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut run = 0;
    while let Some(&chunk) = bytes.get(run..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_le_bytes(chunk);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // Each term sets the high bit of the first byte it is looking for; a borrow can set more bits only above
        // that byte, so the lowest bit set marks the first byte that needs attention.
        let special = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let special = special & HIGHS;
        if special != 0 {
            return run + (special.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run + bytes
        .get(run..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b != b'"' && b != b'\\' && b >= 0x20)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-at-a-time run agrees with the byte-by-byte rule for every position of every special byte, among
    /// ordinary ASCII and multi-byte UTF-8.
    #[test]
    fn plain_run_stops_at_the_first_special_byte() {
        let naive = |bytes: &[u8]| {
            bytes
                .iter()
                .take_while(|&&b| b != b'"' && b != b'\\' && b >= 0x20)
                .count()
        };
        let fillers: [&[u8]; 4] = [b"a", "\u{e9}".as_bytes(), "\u{20ac}".as_bytes(), b"\x7f"];
        for filler in fillers {
            for len in 0..40 {
                let plain: Vec<u8> = filler.iter().copied().cycle().take(len).collect();
                assert_eq!(plain_run(&plain), naive(&plain));
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    for at in 0..=len {
                        let mut bytes = plain.clone();
                        bytes.insert(at, special);
                        bytes.extend_from_slice(b"\"tail");
                        assert_eq!(plain_run(&bytes), naive(&bytes), "{bytes:?}");
                    }
                }
            }
        }
    }

    fn scan(text: &str) -> Result<Vec<(&str, &str)>, ScanError> {
        members(text).collect()
    }

    #[test]
    fn splits_members_raw() {
        let cases: [(&str, &[(&str, &str)]); 6] = [
            ("{}", &[]),
            (" \t\r\n{ \n} \n", &[]),
            (
                r#"{"stream":"btcusdt@depth5","data":{"bids":[["1","2"]],"asks":[]}}"#,
                &[
                    ("stream", r#""btcusdt@depth5""#),
                    ("data", r#"{"bids":[["1","2"]],"asks":[]}"#),
                ],
            ),
            (
                "{ \"a\" :\t-0.5e+3 , \"b\":true,\"c\":null,\"d\":false,\"e\":0,\"f\":12.25E-1 }",
                &[
                    ("a", "-0.5e+3"),
                    ("b", "true"),
                    ("c", "null"),
                    ("d", "false"),
                    ("e", "0"),
                    ("f", "12.25E-1"),
                ],
            ),
            // Brackets and quotes inside strings are text, not structure.
            (
                r#"{"k\"ey":"}]\\","v":["{\"",{"x":"[\u00e9"}],"é":"ü"}"#,
                &[
                    (r#"k\"ey"#, r#""}]\\""#),
                    ("v", r#"["{\"",{"x":"[\u00e9"}]"#),
                    ("é", r#""ü""#),
                ],
            ),
            (
                r#"{"a":[ ],"b":{ },"c":[[[]],{"d":[{}]}],"e":"\/\b\f\n\r\t"}"#,
                &[
                    ("a", "[ ]"),
                    ("b", "{ }"),
                    ("c", r#"[[[]],{"d":[{}]}]"#),
                    ("e", r#""\/\b\f\n\r\t""#),
                ],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(scan(text), Ok(expected.to_vec()), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        let cases = [
            ("", "expected '{'", 0),
            ("  42", "expected '{'", 2),
            ("[]", "expected '{'", 0),
            ("null", "expected '{'", 0),
            ("{", "expected a key", 1),
            ("{a:1}", "expected a key", 1),
            (r#"{"a":1,}"#, "expected a key", 7),
            (r#"{"a""#, "expected ':'", 4),
            (r#"{"a" 1}"#, "expected ':'", 5),
            (r#"{"a":}"#, "expected a value", 5),
            (r#"{"a":"#, "expected a value", 5),
            (r#"{"a":'b'}"#, "expected a value", 5),
            (r#"{"a":1"#, "expected ',' or '}'", 6),
            (r#"{"a":1 "b":2}"#, "expected ',' or '}'", 7),
            (r#"{"a":01}"#, "expected ',' or '}'", 6),
            (r#"{"a":[1,2}"#, "expected ',' or ']'", 9),
            (r#"{"a":[1 2]}"#, "expected ',' or ']'", 8),
            (r#"{"a":[1,]}"#, "expected a value", 8),
            (r#"{"a":{"b":1]}"#, "expected ',' or '}'", 11),
            (r#"{"a":{"b"}}"#, "expected ':'", 9),
            (r#"{"a":"b}"#, "unterminated string", 5),
            (r#"{"a":"b\"}"#, "unterminated string", 5),
            (r#"{"a"#, "unterminated string", 1),
            (r#"{"a":"\x"}"#, "invalid escape", 7),
            (r#"{"a":"\u12g4"}"#, "invalid escape", 10),
            (r#"{"a":"\"#, "invalid escape", 7),
            ("{\"a\":\"\t\"}", "control character in string", 6),
            (r#"{"a":tru}"#, "invalid literal", 5),
            (r#"{"a":nul"#, "invalid literal", 5),
            (r#"{"a":-}"#, "invalid number", 6),
            (r#"{"a":1.}"#, "invalid number", 7),
            (r#"{"a":.5}"#, "expected a value", 5),
            (r#"{"a":1e}"#, "invalid number", 7),
            (r#"{"a":1e+}"#, "invalid number", 8),
            ("{} x", "trailing characters", 3),
            ("{}{}", "trailing characters", 2),
            (r#"{"a":1}}"#, "trailing characters", 7),
        ];
        for (text, what, at) in cases {
            assert_eq!(scan(text), Err(ScanError { what, at }), "{text}");
        }
    }

    #[test]
    fn validates_whole_objects() {
        assert_eq!(validate(r#" {"b":[["1","0"]],"a":[]} "#), Ok(()));
        assert_eq!(
            validate(r#"{"b":[["1","0"]]"#),
            Err(ScanError {
                what: "expected ',' or '}'",
                at: 16
            })
        );
        assert_eq!(
            validate("[]"),
            Err(ScanError {
                what: "expected '{'",
                at: 0
            })
        );
    }

    #[test]
    fn an_error_ends_the_iteration() {
        let mut iter = members(r#"{"a":1,"b":x,"c":2}"#);
        assert_eq!(iter.next(), Some(Ok(("a", "1"))));
        assert_eq!(
            iter.next(),
            Some(Err(ScanError {
                what: "expected a value",
                at: 11
            }))
        );
        assert_eq!(iter.next(), None);
    }

    #[test]
    fn limits_nesting() {
        // The top-level object is the first level.
        let nested = |levels: usize| {
            format!(
                r#"{{"a":{}{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert!(scan(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            scan(&nested(MAX_DEPTH + 1)),
            Err(ScanError {
                what: "nesting too deep",
                at: 5 + MAX_DEPTH - 1
            })
        );
        // Far deeper than the limit still ends in an error, not a stack overflow.
        assert!(scan(&"{\"a\":[".repeat(100_000)).is_err());
    }

    #[test]
    fn picks_wanted_members() {
        let text = r#"{"id":7,"x":{"id":8},"result":null}"#;
        assert_eq!(
            pick(text, ["result", "id", "error"]),
            Ok([Some("null"), Some("7"), None])
        );
        assert_eq!(pick(text, []), Ok([]));
        assert_eq!(
            pick(r#"{"id":1,"x":2,"x":3,"id":4}"#, ["id"]),
            Err(ScanError {
                what: "duplicate key",
                at: 26
            })
        );
        // Repeated keys nobody asked for are let through, as serde does.
        assert_eq!(pick(r#"{"x":2,"x":3,"id":4}"#, ["id"]), Ok([Some("4")]));
        assert_eq!(
            pick(r#"{"id":1} ,"#, ["id"]),
            Err(ScanError {
                what: "trailing characters",
                at: 9
            })
        );
    }

    #[test]
    fn a_lazy_member_is_delimited_and_everything_else_validated() {
        let text = r#"{"stream":"a@b","data":{"p":"1.5","q":[1,{"x":"]}"}]},"id":1}"#;
        let [stream, data] = pick_lazy(text, ["stream", "data"], "data").unwrap();
        assert_eq!(stream, Some(r#""a@b""#));
        assert_eq!(data, Some(r#"{"p":"1.5","q":[1,{"x":"]}"}]}"#));
        // Inside the lazy value only brackets and strings are checked; its decoder validates the rest.
        for damaged in [r#"{"data":{"p":1.5.,"q":[1 2]}}"#, r#"{"data":[tru]}"#] {
            assert!(pick_lazy(damaged, ["data"], "data").is_ok(), "{damaged}");
            assert!(validate(damaged).is_err(), "{damaged}");
        }
        let refused = [
            (r#"{"data":{"p":[1}]}"#, "mismatched bracket", 15),
            (r#"{"data":[1,2"#, "unterminated container", 12),
            (r#"{"data":{"p":"a\x"}}"#, "invalid escape", 16),
            (r#"{"data":{"p":"1"}"#, "expected ',' or '}'", 17),
            // Outside the lazy member, validated as always.
            (r#"{"data":{},"id":01}"#, "expected ',' or '}'", 17),
            (r#"{"data":{},"x":[1 2]}"#, "expected ',' or ']'", 18),
        ];
        for (text, what, at) in refused {
            assert_eq!(
                pick_lazy(text, ["data"], "data"),
                Err(ScanError { what, at }),
                "{text}"
            );
        }
        // A flat value under the lazy key is validated as any other.
        assert!(pick_lazy(r#"{"data":tru}"#, ["data"], "data").is_err());
        assert_eq!(
            pick_lazy(r#"{"data":null}"#, ["data"], "data"),
            Ok([Some("null")])
        );
        // Nesting is bounded as in a full scan.
        let nested =
            |levels: usize| format!(r#"{{"data":{}{}}}"#, "[".repeat(levels), "]".repeat(levels));
        let deep = nested(MAX_DEPTH);
        assert_eq!(
            pick_lazy(&deep, ["data"], "data").unwrap_err().what,
            "nesting too deep"
        );
        assert_eq!(validate(&deep).unwrap_err().what, "nesting too deep");
        let fits = nested(MAX_DEPTH - 1);
        assert!(pick_lazy(&fits, ["data"], "data").is_ok());
        assert!(validate(&fits).is_ok());
    }

    /// Frames in the venues' own shapes: Binance's payload last, Bybit's with plain members after it.
    const SPLIT_FRAMES: [&str; 4] = [
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"p":"0.35","m":false}}"#,
        r#"{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":7,"data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[]},"cts":6}"#,
        r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","q":"}]"},"cs":24987956059,"ts":1673272861686}"#,
        "{ \"topic\" : \"t\" ,\n\"data\" : [ {\"p\":\"1\"} ] , \"ok\" : true , \"n\" : null , \"x\" : -1.5e+3 }\r\n",
    ];

    #[test]
    fn a_split_payload_is_presumed_from_the_end_of_the_frame() {
        let keys = ["stream", "topic", "data", "ts"];
        for text in SPLIT_FRAMES {
            // The same members as a full scan finds, without walking the payload.
            let split = pick_split(text, keys, "data");
            assert_eq!(
                split,
                Some(pick_lazy(text, keys, "data").unwrap()),
                "{text}"
            );
        }
        // Where the members after the payload are not all plain, or the frame is not in a data frame's shape,
        // nothing is presumed: the caller delimits.
        let unsettled = [
            r#"{"stream":"s","data":{"p":"1"},"note":"a\"b"}"#,
            r#"{"stream":"s","data":{"p":"1"},"note":"a\\"}"#,
            r#"{"stream":"s","data":"text"}"#,
            r#"{"stream":"s","data":null}"#,
            r#"{"stream":"s"}"#,
            r#"{"result":null,"id":1}"#,
            r#"{"stream":"s","stream":"t","data":{}}"#,
            r#"{"stream":"s","data":{},"stream":"t"}"#,
            r#"{"stream":"s","data":{},"ts":1,"ts":2}"#,
            r#"{"stream":"s","data":{},"x":01}"#,
            r#"{"stream":"s","data":{}} x"#,
            r#"{"stream":"s","data":{}"#,
            r#"{"stream":01,"data":{}}"#,
            r#"[{"stream":"s","data":{}}]"#,
            "",
        ];
        for text in unsettled {
            assert_eq!(pick_split(text, keys, "data"), None, "{text}");
        }
        // The one way to presume wrong, a container after the payload: the slice then carries trailing members,
        // which is no JSON value, and the caller looks again.
        let text = r#"{"stream":"s","data":{"p":"1"},"extra":{"a":1},"ts":2}"#;
        let [_, _, data, ts] = pick_split(text, keys, "data").unwrap();
        assert_eq!(data, Some(r#"{"p":"1"},"extra":{"a":1}"#));
        assert_eq!(ts, Some("2"));
        assert!(validate_value(data.unwrap()).is_err());
        assert_eq!(
            pick_lazy(text, keys, "data").unwrap()[2],
            Some(r#"{"p":"1"}"#)
        );
    }

    /// The presumption's soundness: wherever [`pick_split`] presumes, the frame is valid JSON exactly when the
    /// presumed payload is one JSON value, over every damage of one byte (removed, or replaced by a byte that
    /// matters to JSON) of each frame.
    #[test]
    fn a_presumed_payload_is_json_exactly_when_its_frame_is() {
        let mut presumed = 0;
        for frame in SPLIT_FRAMES {
            let mut damaged = vec![frame.to_owned()];
            damaged.extend(one_byte_damages(frame));
            for text in &damaged {
                let Some([data]) = pick_split(text, ["data"], "data") else {
                    continue;
                };
                presumed += 1;
                let payload = data.expect("the payload");
                assert_eq!(
                    validate_value(payload).is_ok(),
                    validate(text).is_ok(),
                    "{text}"
                );
            }
        }
        assert!(presumed > 1000, "{presumed} damaged frames presumed");
    }

    #[test]
    fn any_value_validates() {
        for good in ["[1,2]", r#" {"a":[]} "#, r#""x""#, "-1.5e3", "null"] {
            assert_eq!(validate_value(good), Ok(()), "{good}");
        }
        for bad in ["[1,]", "{", r#""x"#, "1 2", "", "[tru]"] {
            assert!(validate_value(bad).is_err(), "{bad}");
        }
    }
}
