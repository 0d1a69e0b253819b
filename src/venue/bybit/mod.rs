//! Bybit v5, spot, linear and inverse: everything it puts on the wire. `ws.rs` holds the WebSocket side (URLs,
//! topic names and the `orderbook.1` cadence, `op` requests and ping, policies, frame and payload decoders),
//! `rest.rs` the REST side (paths, `category`, paging, the `status` filter, the `retCode` envelope, what 403,
//! 429 and retCode 10006 ask of us). This file only presents them as [`WsExchange`] and [`RestExchange`].

mod rest;
mod ws;

use std::time::Duration;

use crate::model::{ChannelKind, Sample, Venue};
use crate::venue::exchange::{Op, RestExchange, WsExchange};
use crate::venue::rest_wire::{
    InstrumentsPage, RestBudget, RestDecodeError, RestFailure, RestRequest, RestTicker,
};
use crate::venue::scan::Split;
use crate::venue::wire::{DecodeError, Frame, PathFix, Policy, RequestId, strip_suffixes};

/// Bybit.
pub struct Bybit;

impl WsExchange for Bybit {
    fn policy(&self, venue: Venue) -> Policy {
        match venue {
            Venue::BybitSpot => ws::SPOT_POLICY,
            _ => ws::DERIVATIVES_POLICY,
        }
    }

    fn default_url(&self, venue: Venue) -> &'static str {
        match venue {
            Venue::BybitSpot => ws::SPOT_URL,
            Venue::BybitInverse => ws::INVERSE_URL,
            _ => ws::LINEAR_URL,
        }
    }

    /// A Bybit URL names its market (`/v5/public/linear`), so one naming another market, or stopping short of
    /// the market, is wrong. Paths of proxies that follow neither pattern (the root included) are left alone.
    fn ws_path_fix(&self, venue: Venue, path: &str) -> Option<PathFix> {
        let own = venue.market().as_str();
        let expected = format!("/v5/public/{own}");
        let trimmed = path.trim_end_matches('/');
        let (rest, last) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
        if matches!(trimmed, "/v5" | "/v5/public") {
            return Some(PathFix {
                why: format!("a Bybit stream URL ends in its market's path, {expected}"),
                path: expected,
            });
        }
        let markets = ["spot", "linear", "inverse", "option"];
        (markets.contains(&last) && last != own).then(|| PathFix {
            why: format!("the path is bybit/{last}'s stream, not {venue}'s"),
            path: format!("{rest}/{own}"),
        })
    }

    fn default_channels(&self, _venue: Venue) -> &'static [&'static str] {
        ws::CHANNELS
    }

    fn parse_channel(&self, venue: Venue, name: &str) -> Result<ChannelKind, String> {
        ws::parse_channel(venue, name)
    }

    fn expected_interval(&self, _venue: Venue, name: &str) -> Option<Duration> {
        ws::expected_interval(name)
    }

    /// The base URL is used as is.
    fn route(&self, _venue: Venue, _kind: ChannelKind) -> &'static str {
        ws::ROUTE
    }

    fn wire_key(&self, channel: &str, symbol: &str) -> String {
        ws::wire_key(channel, symbol)
    }

    fn request(&self, op: Op, keys: &[&str], id: RequestId) -> String {
        let op = match op {
            Op::Subscribe => "subscribe",
            Op::Unsubscribe => "unsubscribe",
        };
        ws::request(op, keys, id)
    }

    fn ping(&self, id: RequestId) -> Option<String> {
        Some(ws::ping(id))
    }

    #[inline]
    fn decode_frame<'a>(&self, text: &'a str, split: Split) -> Result<Frame<'a>, DecodeError> {
        ws::decode_frame(text, split)
    }

    #[inline]
    fn decode_sample(
        &self,
        _venue: Venue,
        kind: ChannelKind,
        payload: &str,
        ts_ms: Option<i64>,
    ) -> Result<Sample, DecodeError> {
        // The same shapes on every Bybit market.
        match kind {
            ChannelKind::BookTop => ws::decode_orderbook(payload, ts_ms),
            ChannelKind::BookDeltas => ws::decode_orderbook_levels(payload, ts_ms),
            ChannelKind::Trade => ws::decode_public_trade(payload),
            ChannelKind::Ticker => ws::decode_tickers(payload, ts_ms),
            ChannelKind::Kline => ws::decode_kline(payload, ts_ms),
            ChannelKind::BookLevels | ChannelKind::MarkPrice => {
                Err(DecodeError::UnexpectedShape("a kind Bybit does not send"))
            }
        }
    }
}

impl RestExchange for Bybit {
    fn default_url(&self, _venue: Venue) -> &'static str {
        rest::URL
    }

    /// The exporter appends `/v5/market/...` itself.
    fn path_fix(&self, _venue: Venue, path: &str) -> Option<PathFix> {
        strip_suffixes(path, &["/v5/market", "/v5"]).map(|(kept, removed)| PathFix {
            why: format!("the exporter appends {removed}/... itself"),
            path: kept.to_owned(),
        })
    }

    fn budget(&self, _venue: Venue) -> RestBudget {
        rest::BUDGET
    }

    fn time_request(&self, _venue: Venue) -> RestRequest {
        rest::time_request()
    }

    fn parse_server_time(&self, body: &str) -> Result<i64, RestDecodeError> {
        rest::parse_server_time(body)
    }

    fn instruments_request(
        &self,
        venue: Venue,
        status: Option<&str>,
        cursor: Option<&str>,
    ) -> RestRequest {
        rest::instruments_request(venue, status, cursor)
    }

    /// The default listing holds only `Trading` instruments, so telling a halted symbol from an unknown one takes
    /// one listing per other status; spot has only `Trading` ("spot has Trading only", docs
    /// v5/market/instrument.mdx).
    fn listing_statuses(&self, venue: Venue) -> &'static [Option<&'static str>] {
        match venue {
            Venue::BybitSpot => &[None],
            _ => &[None, Some("PreLaunch"), Some("Delivering"), Some("Closed")],
        }
    }

    fn parse_instruments(&self, body: &str) -> Result<InstrumentsPage, RestDecodeError> {
        rest::parse_instruments(body)
    }

    fn ticker_request(&self, venue: Venue, symbol: &str) -> RestRequest {
        rest::ticker_request(venue, symbol)
    }

    fn parse_ticker(&self, body: &str) -> Result<RestTicker, RestDecodeError> {
        rest::parse_ticker(body)
    }

    fn classify_status(&self, status: u16, retry_after: Option<&str>) -> RestFailure {
        rest::classify_status(status, retry_after)
    }

    fn venue_error(&self, code: i64) -> Option<RestFailure> {
        rest::ret_code_failure(code)
    }
}
