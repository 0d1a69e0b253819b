//! A reader of JSON in the plain form venues write their frames in: no whitespace, strings without escapes,
//! unsigned integers, literals. The fast paths of the envelope ([`super::envelope`]) and of flat payloads
//! ([`flat`]) read with it; whatever it does not know it answers `None` for, and the caller reads the text the
//! general way (the scan, serde), which then decides everything, errors included.

use super::scan::{plain_run, same_key};

/// One plain value, as a byte range of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plain {
    /// A string without escapes: the range between its quotes.
    Str(usize, usize),
    /// `0` or digits that do not start with `0`.
    Uint(usize, usize),
    /// `true`, `false` or `null`.
    Literal,
}

impl Plain {
    /// The string's text; `None` for a value of another type.
    #[inline]
    pub(super) fn str(self, text: &str) -> Option<&str> {
        match self {
            Plain::Str(from, to) => text.get(from..to),
            _ => None,
        }
    }

    /// The integer's text; `None` for a value of another type.
    #[inline]
    pub(super) fn uint(self, text: &str) -> Option<&str> {
        match self {
            Plain::Uint(from, to) => text.get(from..to),
            _ => None,
        }
    }

    /// The integer as an `i64`; `None` for another type or one past `i64::MAX`.
    #[inline]
    pub(super) fn i64(self, text: &str) -> Option<i64> {
        self.uint(text)?.parse().ok()
    }
}

/// The values of the members `keys` of the flat object `text` (`None` where absent), when every member of it is
/// plain and no wanted key comes twice; `None` for any other text. Members not wanted are checked, not kept.
#[inline]
pub(super) fn flat<const N: usize>(text: &str, keys: [&str; N]) -> Option<[Option<Plain>; N]> {
    let mut reader = Reader::new(text);
    let mut values = [None; N];
    reader.literal(b"{")?;
    if reader.literal(b"}").is_none() {
        loop {
            reader.literal(b"\"")?;
            let key = reader.key()?;
            let value = reader.value()?;
            if let Some(i) = keys.iter().position(|k| same_key(k.as_bytes(), key))
                && values[i].replace(value).is_some()
            {
                return None;
            }
            if reader.literal(b",").is_none() {
                reader.literal(b"}")?;
                break;
            }
        }
    }
    reader.at_end().then_some(values)
}

/// A position in a text's bytes. It only stops after an ASCII byte, so slicing the text at it cannot panic.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// True at the end of the text.
    #[inline]
    pub(super) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// The next byte, if any.
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `literal` if it comes next.
    #[inline]
    pub(super) fn literal(&mut self, literal: &[u8]) -> Option<()> {
        let rest = self.bytes.get(self.pos..)?;
        rest.starts_with(literal).then(|| self.pos += literal.len())
    }

    /// The rest of a string without escapes whose opening quote was consumed, as a byte range; the closing quote
    /// is consumed.
    #[inline]
    fn rest_of_string(&mut self) -> Option<(usize, usize)> {
        let from = self.pos;
        let to = from + plain_run(self.bytes.get(from..)?);
        (self.bytes.get(to) == Some(&b'"')).then(|| {
            self.pos = to + 1;
            (from, to)
        })
    }

    /// A member's key, its opening quote consumed, and the colon after it.
    #[inline]
    pub(super) fn key(&mut self) -> Option<&'a [u8]> {
        let (from, to) = self.rest_of_string()?;
        self.literal(b":")?;
        let bytes = self.bytes;
        Some(&bytes[from..to])
    }

    /// One plain value; `None` (the position then undefined) for anything else, containers included.
    #[inline]
    pub(super) fn value(&mut self) -> Option<Plain> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                let (from, to) = self.rest_of_string()?;
                Some(Plain::Str(from, to))
            }
            b'0'..=b'9' => {
                let from = self.pos;
                let digits = self.bytes[from..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let to = from + digits;
                // A leading zero, a fraction or an exponent is for the general reader.
                let plain = (digits == 1 || self.bytes[from] != b'0')
                    && !matches!(self.bytes.get(to), Some(b'.' | b'e' | b'E'));
                plain.then(|| {
                    self.pos = to;
                    Plain::Uint(from, to)
                })
            }
            b't' => self.literal(b"true").map(|()| Plain::Literal),
            b'f' => self.literal(b"false").map(|()| Plain::Literal),
            b'n' => self.literal(b"null").map(|()| Plain::Literal),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::scan;

    #[test]
    fn reads_flat_objects_of_plain_values() {
        let text = r#"{"e":"aggTrade","E":1633998523963,"p":"0.35280000","m":false,"M":true,"x":null,"a":0}"#;
        let [e, big_e, p, a, absent] = flat(text, ["e", "E", "p", "a", "z"]).unwrap();
        assert_eq!(e.and_then(|v| v.str(text)), Some("aggTrade"));
        assert_eq!(big_e.and_then(|v| v.i64(text)), Some(1_633_998_523_963));
        assert_eq!(big_e.and_then(|v| v.str(text)), None);
        assert_eq!(p.and_then(|v| v.str(text)), Some("0.35280000"));
        assert_eq!(p.and_then(|v| v.i64(text)), None);
        assert_eq!(a.and_then(|v| v.i64(text)), Some(0));
        assert_eq!(absent, None);
        assert_eq!(flat("{}", ["p"]), Some([None]));
        assert_eq!(
            flat(r#"{"E":9223372036854775808}"#, ["E"])
                .map(|[e]| e.and_then(|v| v.i64("{\"E\":9223372036854775808}"))),
            Some(None)
        );
    }

    #[test]
    fn leaves_everything_else_to_the_general_reader() {
        for text in [
            r#"{"p":"1","p":"2"}"#,
            r#"{ "p":"1"}"#,
            r#"{"p":"1" }"#,
            r#"{"p":"1"} "#,
            r#"{"p":"a\"b"}"#,
            r#"{"p":-1}"#,
            r#"{"p":1.5}"#,
            r#"{"p":1e3}"#,
            r#"{"p":01}"#,
            r#"{"p":[1]}"#,
            r#"{"p":{}}"#,
            r#"{"p":tru}"#,
            r#"{"p":"1",}"#,
            r#"{"p":"1""#,
            r#"{"p""#,
            r#"["p"]"#,
            "",
        ] {
            assert_eq!(flat(text, ["p"]), None, "{text}");
        }
        // A key not wanted may come twice: serde's derive ignores it too.
        assert!(flat(r#"{"q":"1","q":"2"}"#, ["p"]).is_some());
    }

    /// Whatever the reader accepts is one valid JSON object, and the values it reads are the members the scan
    /// finds: over real payloads and every one-byte damage of them.
    #[test]
    fn agrees_with_the_scan_wherever_it_answers() {
        let payloads = [
            r#"{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}"#,
            r#"{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}"#,
            r#"{"symbol":"AAVEUSDT","bid1Price":"112.89","bid1Size":"2.12","ask1Price":"112.90","ask1Size":"5.02"}"#,
        ];
        let mut answered = 0;
        for payload in payloads {
            for text in std::iter::once(payload.to_owned()).chain(scan::one_byte_damages(payload)) {
                let Some([p, big_e, s]) = flat(&text, ["p", "E", "s"]) else {
                    continue;
                };
                answered += 1;
                let [sp, se, ss] = scan::pick(&text, ["p", "E", "s"]).unwrap_or_else(|e| {
                    panic!("the scan refuses what the reader read ({e:?}): {text}")
                });
                for (fast, raw) in [(p, sp), (big_e, se), (s, ss)] {
                    let read = fast.map(|v| match v {
                        Plain::Str(from, to) => format!("\"{}\"", &text[from..to]),
                        Plain::Uint(from, to) => text[from..to].to_owned(),
                        Plain::Literal => raw.unwrap_or_default().to_owned(),
                    });
                    assert_eq!(read.as_deref(), raw, "{text}");
                }
            }
        }
        assert!(answered > 100, "{answered}");
    }
}
