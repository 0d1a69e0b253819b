//! The status page at `/`: server-rendered HTML, no script and no external asset, so it works behind basic auth
//! and TLS and in any browser. A header with the version, the uptime and each market's connections and verdicts;
//! then every watched symbol, worst first, filtered by the query string, capped at `?limit=` rows; the page
//! reloads itself every few seconds.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::query::{Filter, Request};
use super::view::SymbolView;
use crate::freshness::{Feed, Status};
use crate::model::Venue;
use crate::tracker::{Tracker, UnixNanos};

/// How often the page reloads itself.
const REFRESH_SECONDS: u32 = 5;

/// What the page shows.
pub(super) struct Page<'a> {
    pub(super) uptime: Duration,
    pub(super) telemetry_path: &'a str,
    pub(super) markets: &'a [(Venue, Arc<Tracker>)],
    pub(super) now: UnixNanos,
    /// The symbols that pass the filter, worst first.
    pub(super) rows: &'a [SymbolView],
    /// Every watched symbol, filtered or not.
    pub(super) watched: usize,
    pub(super) request: &'a Request,
}

/// Orders symbols worst first: critical, stale, no data, degraded, healthy; within one status a late feed first,
/// then no data, quiet and live; then the longest silence.
pub(super) fn sort_worst_first(rows: &mut [SymbolView]) {
    let status = |s: Status| match s {
        Status::Critical => 0,
        Status::Stale => 1,
        Status::NoData => 2,
        Status::Degraded => 3,
        Status::Healthy => 4,
    };
    let feed = |f: Feed| match f {
        Feed::Late => 0,
        Feed::NoData => 1,
        Feed::Quiet => 2,
        Feed::Live => 3,
    };
    rows.sort_by(|a, b| {
        (status(a.rank.0), feed(a.rank.1))
            .cmp(&(status(b.rank.0), feed(b.rank.1)))
            .then(b.staleness_seconds.total_cmp(&a.staleness_seconds))
    });
}

/// The whole page.
pub(super) fn render(page: &Page<'_>) -> String {
    let mut html = String::with_capacity(4096 + page.rows.len().min(page.request.limit) * 400);
    let bad = page
        .rows
        .iter()
        .filter(|r| {
            matches!(r.rank.0, Status::Stale | Status::Critical | Status::NoData)
                || r.rank.1 == Feed::Late
        })
        .count();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>marketfeed_exporter: {bad} of {shown} need attention</title>\n<style>{STYLE}</style></head><body>\n",
        shown = page.rows.len(),
    );
    header(&mut html, page);
    markets(&mut html, page);
    filter_form(&mut html, &page.request.filter);
    symbols(&mut html, page);
    html.push_str("</body></html>\n");
    html
}

/// A page that only says what was wrong with the query string.
pub(super) fn error(message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>marketfeed_exporter: bad request</title>\
         <style>{STYLE}</style></head><body>\n<h1>marketfeed_exporter</h1>\n<p class=\"error\">{}</p>\n\
         <p><a href=\"/\">Back to every symbol</a></p>\n</body></html>\n",
        escape(message)
    )
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:1em 2em;color:#1f2328}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .3em}.meta{color:#59636e}\
table{border-collapse:collapse}th,td{padding:.2em .7em;border-bottom:1px solid #d1d9e0;text-align:left;white-space:nowrap}\
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.healthy,.live{color:#1a7f37}.degraded,.quiet{color:#9a6700}.stale,.late{color:#cf222e;font-weight:600}\
.critical{color:#fff;background:#a40e26;font-weight:600}.no_data{color:#8250df}.error{color:#cf222e}\
form{margin:.4em 0}select{margin-right:.8em}";

fn header(html: &mut String, page: &Page<'_>) {
    let path = escape(page.telemetry_path);
    let _ = write!(
        html,
        "<header><h1>marketfeed_exporter</h1>\n<p class=\"meta\">Freshness of exchange market data, per symbol. \
         Version {version}, up {uptime}, this page reloads every {REFRESH_SECONDS} s. \
         <a href=\"{path}\">{path}</a> · <a href=\"/api/v1/symbols\">/api/v1/symbols</a> (JSON, same filters) · \
         <a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></p></header>\n",
        version = env!("CARGO_PKG_VERSION"),
        uptime = age(page.uptime.as_secs_f64()),
    );
}

fn markets(html: &mut String, page: &Page<'_>) {
    html.push_str(
        "<h2>Markets</h2>\n<table id=\"markets\"><thead><tr><th>market</th><th>connections up</th>\
         <th>live</th><th>quiet</th><th>late</th><th>no data</th><th>degraded / stale / critical after</th></tr>\
         </thead><tbody>\n",
    );
    for (venue, tracker) in page.markets {
        let connections: Vec<bool> = tracker.connections().map(|c| c.up).collect();
        let up = connections.iter().filter(|up| **up).count();
        let [live, quiet, late, no_data] = tracker.feed_counts(page.now);
        let t = tracker.thresholds();
        let down = if up < connections.len() {
            " class=\"stale\""
        } else {
            ""
        };
        let _ = writeln!(
            html,
            "<tr><td>{venue}</td><td class=\"num\"{down}>{up}/{total}</td><td class=\"num\">{live}</td>\
             <td class=\"num\">{quiet}</td><td class=\"num{late_class}\">{late}</td><td class=\"num\">{no_data}</td>\
             <td>{} / {} / {}</td></tr>",
            humantime::format_duration(t.degraded),
            humantime::format_duration(t.stale),
            humantime::format_duration(t.critical),
            total = connections.len(),
            late_class = if late > 0 { " late" } else { "" },
        );
    }
    html.push_str("</tbody></table>\n");
}

fn filter_form(html: &mut String, filter: &Filter) {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let feeds: Vec<&str> = Feed::ALL.iter().map(|f| f.as_str()).collect();
    let mut exchanges: Vec<&str> = Venue::ALL.iter().map(|v| v.exchange().as_str()).collect();
    exchanges.dedup();
    let mut markets: Vec<&str> = Venue::ALL.iter().map(|v| v.market().as_str()).collect();
    markets.sort_unstable();
    markets.dedup();
    html.push_str("<h2>Symbols</h2>\n<form method=\"get\" action=\"/\">");
    for (name, options, chosen) in [
        ("status", &statuses, &filter.status),
        ("feed", &feeds, &filter.feed),
        ("exchange", &exchanges, &filter.exchange),
        ("market", &markets, &filter.market),
    ] {
        let _ = write!(
            html,
            "<label>{name} <select name=\"{name}\"><option value=\"\">any</option>"
        );
        for option in options.iter() {
            let selected = if chosen.len() == 1 && chosen[0] == *option {
                " selected"
            } else {
                ""
            };
            let _ = write!(html, "<option{selected}>{option}</option>");
        }
        html.push_str("</select></label>");
    }
    html.push_str("<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>\n");
}

fn symbols(html: &mut String, page: &Page<'_>) {
    let shown = page.rows.len().min(page.request.limit);
    let filtered = if page.request.filter.is_empty() {
        String::new()
    } else {
        format!(" matching the filter, of {} watched", page.watched)
    };
    let count = page.rows.len();
    let _ = writeln!(
        html,
        "<p id=\"count\">{count} symbol{}{filtered}, worst first.</p>",
        if count == 1 { "" } else { "s" }
    );
    html.push_str(
        "<table id=\"symbols\"><thead><tr><th>exchange</th><th>market</th><th>symbol</th><th>status</th>\
         <th>feed</th><th>silent for</th><th>last price</th><th>listing</th><th>REST cross-check</th></tr></thead>\
         <tbody>\n",
    );
    for row in &page.rows[..shown] {
        let check = match &row.rest_check {
            None => String::new(),
            Some(c) => {
                let verdict = match c.feed_behind {
                    Some(true) => "<span class=\"stale\">feed broken</span>",
                    Some(false) => "market quiet",
                    None => "inconclusive",
                };
                format!(
                    "{verdict}, {} at {}",
                    escape(&c.rest_price),
                    escape(&c.checked_at)
                )
            }
        };
        let symbol = escape(&row.symbol);
        let _ = writeln!(
            html,
            "<tr id=\"{exchange}-{market}-{symbol}\"><td>{exchange}</td><td>{market}</td>\
             <td><a href=\"/api/v1/symbols/{exchange}/{market}/{symbol}\">{symbol}</a></td>\
             <td class=\"{status}\">{status}</td><td class=\"{feed}\">{feed}</td><td class=\"num\">{age}</td>\
             <td class=\"num\">{price}</td><td>{listing}</td><td>{check}</td></tr>",
            exchange = row.exchange,
            market = row.market,
            status = row.status,
            feed = row.feed,
            age = age(row.staleness_seconds),
            price = row.last_price.as_deref().map(escape).unwrap_or_default(),
            listing = row.listing,
        );
    }
    html.push_str("</tbody></table>\n");
    if shown < page.rows.len() {
        let _ = writeln!(
            html,
            "<p id=\"more\">The worst {shown} of {} shown. Narrow them with the filters, or raise <code>?limit=</code> \
             (at most {}).</p>",
            page.rows.len(),
            super::query::MAX_LIMIT
        );
    }
}

/// `0.4 s`, `12.3 s`, `3m 12s`, `2h 5m`.
fn age(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let s = seconds as u64;
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    }
}

/// HTML-escapes text for element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        for (seconds, text) in [
            (0.4, "0.4 s"),
            (59.94, "59.9 s"),
            (60.0, "1m 00s"),
            (192.0, "3m 12s"),
            (7500.0, "2h 05m"),
        ] {
            assert_eq!(age(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(error("limit: \"<script>\" is bad").contains("&lt;script&gt;"));
    }
}
