//! The fast path of a data frame's envelope: the one shape each venue sends every data frame in, split by position
//! with no key looked up more than once.
//!
//! A data frame is `{"<name key>":"<name>", <plain members>, "data":<object or array>, <plain members>}` on both
//! venues: Binance `{"stream":"btcusdt@aggTrade","data":{..}}`, Bybit
//! `{"topic":"tickers.BTCUSDT","type":"snapshot","data":{..},"cs":1,"ts":2}`. [`split`] reads exactly that, with
//! no whitespace, the name first, every other member a string without escapes or an unsigned integer, and no
//! member it was not told about, and gives what the general scan ([`super::scan::pick_split`]) gives for the same
//! text, at a fraction of its cost. Anything else (a reply, whitespace, an escape, a member it does not know, a
//! member twice) is `None`: the caller scans the frame the general way, which decides the frame's fate, errors
//! included.
//!
//! The payload's end is presumed as the general scan presumes it, from the frame's end; the decoder's parse of the
//! payload settles it (see [`super::scan::pick_split`]).

use super::plain::{Plain, Reader};
use super::scan::{payload_end, same_key};

/// The members of one venue's data frame envelope.
pub(super) struct Shape {
    /// The member holding the stream name or topic, always the first: `stream`, `topic`.
    pub(super) name: &'static str,
    /// The member holding the venue's time of the frame (Bybit's `ts`), an integer, if the venue sends one.
    pub(super) time: Option<&'static str>,
    /// Further members that may come, each at most once, and are not read (Bybit's `type`, `cs`).
    pub(super) ignored: &'static [&'static str],
}

/// A data frame's parts, borrowed from its text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Parts<'a> {
    /// The stream name or topic.
    pub(super) name: &'a str,
    /// The raw JSON of the `data` member: an object or an array (presumed, see the module).
    pub(super) payload: &'a str,
    /// The digits of the time member, when the frame has one.
    pub(super) time: Option<&'a str>,
}

/// `text` split as a data frame of `shape`, or `None` where it is not in that shape exactly.
#[inline]
pub(super) fn split<'a>(text: &'a str, shape: &Shape) -> Option<Parts<'a>> {
    let mut reader = Reader::new(text);
    let mut seen = Seen::default();
    reader.literal(b"{\"")?;
    if !same_key(reader.key()?, shape.name.as_bytes()) {
        return None;
    }
    let name = match reader.value()? {
        Plain::Str(from, to) => &text[from..to],
        _ => return None,
    };
    // The members before the payload.
    loop {
        reader.literal(b",\"")?;
        let key = reader.key()?;
        if key == b"data" {
            break;
        }
        seen.member(shape, key, reader.value()?)?;
    }
    let start = reader.pos;
    if !matches!(reader.peek(), Some(b'{' | b'[')) {
        return None;
    }
    let end = payload_end(reader.bytes)?;
    if end <= start {
        return None;
    }
    // The members after it, then the closing brace, which ends the text.
    reader.pos = end;
    while reader.literal(b",\"").is_some() {
        let key = reader.key()?;
        if key == b"data" {
            return None;
        }
        seen.member(shape, key, reader.value()?)?;
    }
    reader.literal(b"}")?;
    reader.at_end().then(|| Parts {
        name,
        payload: &text[start..end],
        time: seen.time.and_then(|time| time.uint(text)),
    })
}

/// The members met so far besides the name and the payload.
#[derive(Default)]
struct Seen {
    /// The time member's value.
    time: Option<Plain>,
    /// Which of the shape's ignored members came, one bit each.
    ignored: u32,
}

impl Seen {
    /// Notes the member `key` with `value`; `None` for a member the shape does not have, one met twice, or a
    /// time that is not an integer.
    #[inline]
    fn member(&mut self, shape: &Shape, key: &[u8], value: Plain) -> Option<()> {
        if shape
            .time
            .is_some_and(|time| same_key(key, time.as_bytes()))
        {
            let integer = matches!(value, Plain::Uint(..));
            return (integer && self.time.replace(value).is_none()).then_some(());
        }
        let i = shape
            .ignored
            .iter()
            .position(|k| same_key(key, k.as_bytes()))?;
        let bit = 1 << i;
        let first = self.ignored & bit == 0;
        self.ignored |= bit;
        first.then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::scan;

    const BINANCE: Shape = Shape {
        name: "stream",
        time: None,
        ignored: &[],
    };
    const BYBIT: Shape = Shape {
        name: "topic",
        time: Some("ts"),
        ignored: &["type", "cs"],
    };

    fn parts<'a>(name: &'a str, payload: &'a str, time: Option<&'a str>) -> Option<Parts<'a>> {
        Some(Parts {
            name,
            payload,
            time,
        })
    }

    #[test]
    fn splits_the_venues_data_frames() {
        assert_eq!(
            split(
                r#"{"stream":"btcusdt@aggTrade","data":{"p":"1.5","E":1}}"#,
                &BINANCE
            ),
            parts("btcusdt@aggTrade", r#"{"p":"1.5","E":1}"#, None)
        );
        assert_eq!(
            split(
                r#"{"topic":"tickers.X","type":"delta","data":{"a":[1]},"cs":78039939929,"ts":1709210212704}"#,
                &BYBIT
            ),
            parts("tickers.X", r#"{"a":[1]}"#, Some("1709210212704"))
        );
        assert_eq!(
            split(
                r#"{"topic":"publicTrade.X","type":"snapshot","ts":1672304486868,"data":[{"p":"1"}]}"#,
                &BYBIT
            ),
            parts("publicTrade.X", r#"[{"p":"1"}]"#, Some("1672304486868"))
        );
        assert_eq!(
            split(r#"{"topic":"t","data":{},"ts":0}"#, &BYBIT),
            parts("t", "{}", Some("0"))
        );
    }

    #[test]
    fn leaves_every_other_shape_to_the_scan() {
        for text in [
            // Whitespace, escapes, another first member, replies.
            r#"{ "stream":"a","data":{}}"#,
            r#"{"stream":"a","data":{}} "#,
            r#"{"stream":"a\u0040b","data":{}}"#,
            r#"{"data":{},"stream":"a"}"#,
            r#"{"result":null,"id":1}"#,
            // Members the shape does not have, or twice.
            r#"{"stream":"a","id":1,"data":{}}"#,
            r#"{"topic":"t","ts":1,"ts":2,"data":{}}"#,
            r#"{"topic":"t","type":"a","data":{},"type":"b"}"#,
            r#"{"topic":"t","data":{},"data":1}"#,
            r#"{"topic":"t","data":{},"topic":"u"}"#,
            // Values that are not plain: signs, fractions, exponents, leading zeros, literals, containers.
            r#"{"topic":"t","ts":-1,"data":{}}"#,
            r#"{"topic":"t","ts":1.5,"data":{}}"#,
            r#"{"topic":"t","ts":1e3,"data":{}}"#,
            r#"{"topic":"t","ts":01,"data":{}}"#,
            r#"{"topic":"t","ts":null,"data":{}}"#,
            r#"{"topic":"t","ts":"1","data":{}}"#,
            r#"{"topic":1,"data":{}}"#,
            r#"{"topic":"t","cs":[1],"data":{}}"#,
            // A payload that is not a container, or a frame cut short.
            r#"{"stream":"a","data":null}"#,
            r#"{"stream":"a","data":"x"}"#,
            r#"{"stream":"a","data":{}"#,
            r#"{"stream":"a","data":"#,
            r#"{"stream":"a"}"#,
            r#"{"stream":"a""#,
            "",
        ] {
            let shape = if text.contains("stream") {
                &BINANCE
            } else {
                &BYBIT
            };
            assert_eq!(split(text, shape), None, "{text}");
        }
    }

    /// Wherever the fast path answers, the general scan gives the same name, payload and time: over the venues'
    /// real frames and every one-byte damage of them.
    #[test]
    fn agrees_with_the_scan_wherever_it_answers() {
        let frames = [
            (
                r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#,
                &BINANCE,
            ),
            (
                r#"{"topic":"tickers.AAVEUSDT","type":"delta","data":{"symbol":"AAVEUSDT","bid1Price":"112.89","bid1Size":"2.12","ask1Price":"112.90","ask1Size":"5.02"},"cs":78039939929,"ts":1709210212704}"#,
                &BYBIT,
            ),
            (
                r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],"u":18521288,"seq":7961638724},"cts":1672304484976}"#,
                &Shape {
                    ignored: &["type", "cts"],
                    ..BYBIT
                },
            ),
        ];
        let mut answered = 0;
        for (frame, shape) in frames {
            for text in std::iter::once(frame.to_owned()).chain(scan::one_byte_damages(frame)) {
                let Some(fast) = split(&text, shape) else {
                    continue;
                };
                answered += 1;
                let keys = [shape.name, "data", shape.time.unwrap_or("-")];
                let [name, payload, time] = scan::pick_split(&text, keys, "data")
                    .unwrap_or_else(|| panic!("the scan refuses what the fast path split: {text}"));
                let unquoted = name.and_then(|n| n.strip_prefix('"')?.strip_suffix('"'));
                assert_eq!(unquoted, Some(fast.name), "{text}");
                assert_eq!(payload, Some(fast.payload), "{text}");
                assert_eq!(time, fast.time, "{text}");
            }
        }
        assert!(answered > 100, "{answered}");
    }
}
