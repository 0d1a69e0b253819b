//! Binance, spot and USD-M futures: everything it puts on the wire. `ws.rs` holds the WebSocket side (URLs,
//! routes, channel names and cadences, `SUBSCRIBE` text, policies, frame and payload decoders), `rest.rs` the
//! REST side (paths, weights, budgets, replies, error bodies and what 429 and 418 ask of us). This file only
//! presents them as [`WsExchange`] and [`RestExchange`].

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

/// Binance.
pub struct Binance;

impl WsExchange for Binance {
    fn policy(&self, venue: Venue) -> Policy {
        match venue {
            Venue::BinanceUsdm => ws::USDM_POLICY,
            _ => ws::SPOT_POLICY,
        }
    }

    fn default_url(&self, venue: Venue) -> &'static str {
        match venue {
            Venue::BinanceUsdm => ws::USDM_URL,
            _ => ws::SPOT_URL,
        }
    }

    /// The feed appends the routes (`/stream`, USD-M `/public/stream` and `/market/stream`), so a base ending
    /// in one doubles it.
    fn ws_path_fix(&self, _venue: Venue, path: &str) -> Option<PathFix> {
        strip_suffixes(path, &["/stream", "/ws", "/public", "/market"]).map(|(kept, removed)| {
            PathFix {
                why: format!("the exporter appends the route ({removed} here) itself"),
                path: kept.to_owned(),
            }
        })
    }

    fn default_channels(&self, venue: Venue) -> &'static [&'static str] {
        match venue {
            Venue::BinanceUsdm => ws::USDM_CHANNELS,
            _ => ws::SPOT_CHANNELS,
        }
    }

    fn parse_channel(&self, venue: Venue, name: &str) -> Result<ChannelKind, String> {
        ws::parse_channel(venue, name)
    }

    fn expected_interval(&self, venue: Venue, name: &str) -> Option<Duration> {
        ws::expected_interval(venue, name)
    }

    fn route(&self, venue: Venue, kind: ChannelKind) -> &'static str {
        ws::route(venue, kind)
    }

    fn wire_key(&self, channel: &str, symbol: &str) -> String {
        ws::wire_key(channel, symbol)
    }

    fn request(&self, op: Op, keys: &[&str], id: RequestId) -> String {
        let method = match op {
            Op::Subscribe => "SUBSCRIBE",
            Op::Unsubscribe => "UNSUBSCRIBE",
        };
        ws::request(method, keys, id)
    }

    /// The server pings.
    fn ping(&self, _id: RequestId) -> Option<String> {
        None
    }

    #[inline]
    fn decode_frame<'a>(&self, text: &'a str, split: Split) -> Result<Frame<'a>, DecodeError> {
        ws::decode_frame(text, split)
    }

    #[inline]
    fn decode_sample(
        &self,
        venue: Venue,
        kind: ChannelKind,
        payload: &str,
        _ts_ms: Option<i64>,
    ) -> Result<Sample, DecodeError> {
        match kind {
            ChannelKind::BookTop => ws::decode_book_ticker(payload),
            ChannelKind::Trade => ws::decode_trade(payload),
            ChannelKind::MarkPrice => ws::decode_mark_price(payload),
            ChannelKind::Kline => ws::decode_kline(payload),
            ChannelKind::Ticker => ws::decode_ticker(payload),
            // USD-M sends partial depth in the `depthUpdate` shape, spot in its own.
            ChannelKind::BookLevels if venue == Venue::BinanceUsdm => {
                ws::decode_depth_update(payload)
            }
            ChannelKind::BookLevels => ws::decode_spot_partial_depth(payload),
            ChannelKind::BookDeltas => {
                Err(DecodeError::UnexpectedShape("a kind Binance does not send"))
            }
        }
    }
}

impl RestExchange for Binance {
    fn default_url(&self, venue: Venue) -> &'static str {
        match venue {
            Venue::BinanceUsdm => rest::USDM_URL,
            _ => rest::SPOT_URL,
        }
    }

    /// The exporter appends `/api/v3/...` (spot) or `/fapi/v1/...` (USD-M) itself.
    fn path_fix(&self, venue: Venue, path: &str) -> Option<PathFix> {
        let suffixes: &[&str] = match venue {
            Venue::BinanceUsdm => &["/fapi/v1", "/fapi"],
            _ => &["/api/v3", "/api"],
        };
        strip_suffixes(path, suffixes).map(|(kept, removed)| PathFix {
            why: format!("the exporter appends {removed}/... itself"),
            path: kept.to_owned(),
        })
    }

    fn budget(&self, venue: Venue) -> RestBudget {
        match venue {
            Venue::BinanceUsdm => rest::USDM_BUDGET,
            _ => rest::SPOT_BUDGET,
        }
    }

    fn time_request(&self, venue: Venue) -> RestRequest {
        rest::time_request(venue)
    }

    fn parse_server_time(&self, body: &str) -> Result<i64, RestDecodeError> {
        rest::parse_server_time(body)
    }

    /// One page with every status: `status` and `cursor` do not apply.
    fn instruments_request(
        &self,
        venue: Venue,
        _status: Option<&str>,
        _cursor: Option<&str>,
    ) -> RestRequest {
        rest::instruments_request(venue)
    }

    fn listing_statuses(&self, _venue: Venue) -> &'static [Option<&'static str>] {
        &[None]
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

    /// Binance paces us by HTTP status (429, 418), never by a code inside a successful answer.
    fn venue_error(&self, _code: i64) -> Option<RestFailure> {
        None
    }
}
