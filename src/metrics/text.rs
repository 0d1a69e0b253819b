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

/// ` value` and the line's end. Integral values below 2^53 (every counter, most gauges) are written as integers,
/// which reads the same as Rust's shortest form of the float and skips the float formatting, the costliest step of
/// a large scrape after escaping.
fn number(out: &mut String, value: f64) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    // -0.0 is integral too, but its float form is `-0`.
    if value.fract() == 0.0 && value.abs() < EXACT && !(value == 0.0 && value.is_sign_negative()) {
        let _ = writeln!(out, " {}", value as i64);
    } else {
        let _ = writeln!(out, " {value}");
    }
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
        ] {
            let mut out = String::new();
            number(&mut out, value);
            assert_eq!(out, format!(" {value}\n"), "{value:?}");
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
