//! The text exposition format (version 0.0.4), written straight from the tracker's values: no intermediate metric
//! objects, so a scrape of 10 000 subscriptions costs the text and not ten times its size in structures.
//!
//! Produces what rust-prometheus' `TextEncoder` would for the same samples: `# HELP` and `# TYPE` lines, label
//! values escaped, numbers in Rust's shortest round-trip form, histograms as cumulative `_bucket` lines ending in
//! `+Inf`, then `_sum` and `_count`. The caller writes families in name order, as a registry gathers them.

use std::fmt::Write as _;

use prometheus::proto::MetricType;

use super::families::Family;
use crate::tracker::HistogramSnapshot;

/// Writes one family's samples into the exposition: its `# HELP` and `# TYPE` lines before the first sample, and
/// nothing at all when it has none.
pub(super) struct Lines<'o> {
    family: &'static Family,
    out: &'o mut String,
    started: bool,
}

impl<'o> Lines<'o> {
    pub(super) fn new(out: &'o mut String, family: &'static Family) -> Self {
        Self {
            family,
            out,
            started: false,
        }
    }

    fn begin(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let f = self.family;
        self.out.push_str("# HELP ");
        self.out.push_str(f.name);
        self.out.push(' ');
        escape(self.out, f.help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(f.name);
        self.out.push(' ');
        self.out.push_str(type_name(f.kind));
        self.out.push('\n');
    }

    /// A gauge sample; `values` in the order of the family's label names.
    pub(super) fn sample(&mut self, values: &[&str], value: f64) {
        self.begin();
        self.out.push_str(self.family.name);
        labels(self.out, self.family.labels, values, None);
        number(self.out, value);
    }

    /// A gauge sample whose label set was written before by [`label_set`] for this family's label names.
    pub(super) fn sample_in(&mut self, set: &LabelSet<'_>, value: f64) {
        debug_assert_eq!(self.family.labels, set.names);
        self.begin();
        self.out.push_str(self.family.name);
        self.out.push_str(set.text);
        number(self.out, value);
    }

    /// A counter sample in a label set written before.
    pub(super) fn count_in(&mut self, set: &LabelSet<'_>, count: u64) {
        self.sample_in(set, count as f64);
    }

    /// A counter sample.
    pub(super) fn count(&mut self, values: &[&str], count: u64) {
        self.sample(values, count as f64);
    }

    /// A histogram: its buckets, `+Inf`, `_sum` and `_count`.
    pub(super) fn histogram(&mut self, values: &[&str], snap: &HistogramSnapshot) {
        self.begin();
        let name = self.family.name;
        let mut bound = String::new();
        for &(upper, count) in &snap.buckets {
            bound.clear();
            let _ = write!(bound, "{upper}");
            self.line(name, "_bucket", values, Some(&bound), count as f64);
        }
        self.line(name, "_bucket", values, Some("+Inf"), snap.count as f64);
        self.line(name, "_sum", values, None, snap.sum);
        self.line(name, "_count", values, None, snap.count as f64);
    }

    fn line(&mut self, name: &str, suffix: &str, values: &[&str], le: Option<&str>, value: f64) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        labels(self.out, self.family.labels, values, le);
        number(self.out, value);
    }
}

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

/// A series' label set as written, `{name="value",...}`, for families that share the label names.
pub(super) struct LabelSet<'a> {
    pub(super) names: &'static [&'static str],
    pub(super) text: &'a str,
}

/// Writes `{name="value",...}` for `names` and `values` into `out`: what [`Lines::sample`] writes between the name
/// and the value, kept for [`Lines::sample_in`].
pub(super) fn label_set(out: &mut String, names: &[&str], values: &[&str]) {
    labels(out, names, values, None);
}

/// `{name="value",...}` with `le` last when given; nothing when there is no label at all.
fn labels(out: &mut String, names: &[&str], values: &[&str], le: Option<&str>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    let mut separator = '{';
    for (name, value) in names.iter().zip(values) {
        out.push(separator);
        out.push_str(name);
        out.push_str("=\"");
        escape(out, value, true);
        out.push('"');
        separator = ',';
    }
    if let Some(le) = le {
        out.push(separator);
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
}

/// ` value` and the line's end, as Rust's shortest round-trip form of the float would write it, without the
/// float formatting (the costliest step of a large scrape after escaping) where the value allows:
///
/// - integral values below 2^53 (every counter, most gauges) as integers;
/// - thousandths below 2^43 (event times in seconds, most prices): the value is the double nearest some `m/1000`,
///   and at that magnitude a double's rounding interval is narrower than a thousandth, so `m/1000` without its
///   trailing zeros is the only shortest decimal that reads back as the value, which is what the float formatting
///   finds.
fn number(out: &mut String, value: f64) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    const THOUSANDTHS: f64 = 8_796_093_022_208.0;
    out.push(' ');
    // -0.0 is integral too, but its float form is `-0`.
    if value.fract() == 0.0 && value.abs() < EXACT && !(value == 0.0 && value.is_sign_negative()) {
        integer(out, value as i64);
    } else if value.abs() < THOUSANDTHS
        && value != 0.0
        && let m = (value * 1e3).round()
        && m / 1e3 == value
    {
        if value < 0.0 {
            out.push('-');
        }
        let m = m.abs() as u64;
        integer(out, (m / 1000) as i64);
        let f = m % 1000;
        let digit = |d: u64| b'0' + d as u8;
        let fraction = [b'.', digit(f / 100), digit(f / 10 % 10), digit(f % 10)];
        let end = fraction.iter().rposition(|&d| d != b'0').unwrap_or(0) + 1;
        // ASCII only; the fraction is not zero, as the value is not integral.
        out.push_str(std::str::from_utf8(&fraction[..end]).unwrap_or_default());
    } else {
        let _ = write!(out, "{value}");
    }
    out.push('\n');
}

/// A non-negative or negative integer in decimal, without the formatting machinery.
fn integer(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// `\` as `\\`, a newline as `\n`, and `"` as `\"` in label values.
fn escape(out: &mut String, text: &str, quotes: bool) {
    // Symbols, venues and channels never need it: copied whole.
    if !text
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quotes && b == b'"'))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_the_float_formatting_would() {
        let exact = 9_007_199_254_740_992.0_f64;
        for value in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            1e15,
            exact - 1.0,
            -(exact - 1.0),
            exact,
            1e300,
            1.5,
            0.1,
            -2.5e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1_765_000_000.123,
            1_765_000_000.1,
            1_765_000_000.012,
            -1_765_000_000.001,
            43_251.37,
            0.001,
            -0.5,
            8_796_093_022_207.999,
            8_796_093_022_208.5,
            i64::MIN as f64,
            (1u64 << 53) as f64 - 0.5,
        ] {
            let mut out = String::new();
            number(&mut out, value);
            assert_eq!(out, format!(" {value}\n"), "{value:?}");
        }
    }

    #[test]
    fn thousandths_and_integers_read_as_the_float_formatting_would() {
        // Event times in milliseconds, prices in cents and in thousandths, and doubles that are none of these,
        // across the magnitudes around the fast paths' bounds.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for _ in 0..200_000 {
            let r = next();
            let value = match r % 6 {
                0 => (1_700_000_000_000 + (r >> 8) % 200_000_000_000) as f64 / 1e3,
                1 => ((r >> 8) % 10_000_000) as f64 / 100.0,
                2 => ((r >> 8) % (1 << 53)) as f64 / 1e3,
                3 => -(((r >> 8) % 1_000_000_000) as f64) / 1e3,
                4 => f64::from_bits(r),
                _ => ((r >> 8) % 100_000) as f64 * 1e-7,
            };
            let mut out = String::new();
            number(&mut out, value);
            assert_eq!(out, format!(" {value}\n"), "{value:?}");
            checked += 1;
        }
        assert_eq!(checked, 200_000);
        for value in [0, 1, -1, 9, 10, -10, 1_234_567, i64::MAX, i64::MIN] {
            let mut out = String::new();
            integer(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    const ESCAPED: Family = Family {
        name: "marketfeed_test",
        help: "A \\ help\nline with \"quotes\".",
        kind: MetricType::GAUGE,
        labels: &["symbol"],
    };

    #[test]
    fn escaping_matches_the_text_format() {
        let mut out = String::new();
        Lines::new(&mut out, &ESCAPED).sample(&["A\"B\\C\nD"], 0.5);
        // A family without samples writes nothing.
        Lines::new(&mut out, &ESCAPED);
        assert_eq!(
            out,
            "# HELP marketfeed_test A \\\\ help\\nline with \"quotes\".\n# TYPE marketfeed_test gauge\n\
             marketfeed_test{symbol=\"A\\\"B\\\\C\\nD\"} 0.5\n"
        );
    }
}
