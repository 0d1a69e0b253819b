//! The query strings of `/` and `/api/v1/symbols`: filters by status, feed, exchange and market (each a
//! comma-separated list), `max_staleness`, and the page's row limit. Every invalid value is a 400 whose message
//! names the parameter.

use std::time::Duration;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::Deserialize;

use super::view::SymbolView;
use crate::freshness::{Feed, Status};
use crate::model::Venue;

/// Most rows the status page shows at once unless `?limit=` says otherwise.
pub(super) const DEFAULT_LIMIT: usize = 500;
/// The largest `?limit=`: a page of ten thousand rows is already several megabytes of HTML.
pub(super) const MAX_LIMIT: usize = 10_000;

/// The raw parameters; unknown ones are ignored.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Params {
    max_staleness: Option<String>,
    status: Option<String>,
    feed: Option<String>,
    exchange: Option<String>,
    market: Option<String>,
    limit: Option<String>,
}

/// Which symbols to show; an empty list accepts any value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Filter {
    pub(super) status: Vec<&'static str>,
    pub(super) feed: Vec<&'static str>,
    pub(super) exchange: Vec<&'static str>,
    pub(super) market: Vec<&'static str>,
}

impl Filter {
    /// Whether a symbol passes every list.
    pub(super) fn matches(&self, view: &SymbolView) -> bool {
        let accepts = |list: &[&str], value: &str| list.is_empty() || list.contains(&value);
        accepts(&self.status, view.status)
            && accepts(&self.feed, view.feed)
            && accepts(&self.exchange, view.exchange)
            && accepts(&self.market, view.market)
    }

    /// Whether nothing is filtered.
    pub(super) fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// A parsed query string.
#[derive(Debug, Default)]
pub(super) struct Request {
    pub(super) filter: Filter,
    pub(super) max_staleness: Option<Duration>,
    /// The page's row limit (`?limit=`), [`DEFAULT_LIMIT`] when absent.
    pub(super) limit: usize,
}

/// Parses the query string; the error is the message of a 400.
pub(super) fn parse(params: Result<Query<Params>, QueryRejection>) -> Result<Request, String> {
    let Query(params) = params.map_err(|e| format!("invalid query string: {}", e.body_text()))?;
    let statuses: Vec<&'static str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let feeds: Vec<&'static str> = Feed::ALL.iter().map(|f| f.as_str()).collect();
    let mut exchanges: Vec<&'static str> =
        Venue::ALL.iter().map(|v| v.exchange().as_str()).collect();
    exchanges.dedup();
    let mut markets: Vec<&'static str> = Venue::ALL.iter().map(|v| v.market().as_str()).collect();
    markets.sort_unstable();
    markets.dedup();
    let max_staleness = params
        .max_staleness
        .as_deref()
        .map(|value| {
            humantime::parse_duration(value.trim()).map_err(|_| {
                format!("max_staleness: invalid duration {value:?} (use e.g. 2s, 500ms, 1m)")
            })
        })
        .transpose()?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                format!("limit: {value:?} is not a whole number from 1 to {MAX_LIMIT}")
            })?,
    };
    Ok(Request {
        filter: Filter {
            status: list("status", params.status.as_deref(), &statuses)?,
            feed: list("feed", params.feed.as_deref(), &feeds)?,
            exchange: list("exchange", params.exchange.as_deref(), &exchanges)?,
            market: list("market", params.market.as_deref(), &markets)?,
        },
        max_staleness,
        limit,
    })
}

/// A comma-separated list of known values; empty items are skipped, so `?status=` filters nothing.
fn list(
    name: &str,
    value: Option<&str>,
    known: &[&'static str],
) -> Result<Vec<&'static str>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(item))
                .copied()
                .ok_or_else(|| {
                    format!(
                        "{name}: unknown value {item:?} (expected {})",
                        known.join(", ")
                    )
                })
        })
        .collect()
}
