//! What an exchange must know, as two traits its folder implements on a zero-sized type: [`WsExchange`] (the
//! WebSocket wire) and [`RestExchange`] (the REST companion). The facades `venue` and `venue::rest` dispatch
//! to them by [`Venue::exchange`]. A leaf: it names no exchange.

use std::time::Duration;

use super::rest_wire::{
    InstrumentsPage, RestBudget, RestDecodeError, RestFailure, RestRequest, RestTicker,
};
use super::scan::Split;
use super::wire::{DecodeError, Frame, PathFix, Policy, RequestId};
use crate::model::{ChannelKind, Sample, Venue};

/// A control request on the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Subscribe to streams.
    Subscribe,
    /// Unsubscribe from streams.
    Unsubscribe,
}

/// An exchange's WebSocket wire knowledge. `venue` is always one of this exchange's markets.
pub trait WsExchange: Sync {
    /// The market's limits and heartbeat.
    fn policy(&self, venue: Venue) -> Policy;
    /// The documented WebSocket base URL.
    fn default_url(&self, venue: Venue) -> &'static str;
    /// Why a configured base URL's path would be extended wrongly, and the path it should have.
    fn ws_path_fix(&self, venue: Venue, path: &str) -> Option<PathFix>;
    /// The channels watched when configuration names none.
    fn default_channels(&self, venue: Venue) -> &'static [&'static str];
    /// A configured channel name's payload kind, or a human reason it is not one.
    fn parse_channel(&self, venue: Venue, name: &str) -> Result<ChannelKind, String>;
    /// The push interval of a channel documented as pushed on a schedule; None for event-driven ones.
    fn expected_interval(&self, venue: Venue, name: &str) -> Option<Duration>;
    /// The URL path appended to the base URL for a connection carrying `kind`.
    fn route(&self, venue: Venue, kind: ChannelKind) -> &'static str;
    /// The wire key of a subscription.
    fn wire_key(&self, channel: &str, symbol: &str) -> String;
    /// The text of a subscribe or unsubscribe request for `keys`.
    fn request(&self, op: Op, keys: &[&str], id: RequestId) -> String;
    /// The JSON ping, where the client pings; None where the server does.
    fn ping(&self, id: RequestId) -> Option<String>;
    /// Classifies one text frame, splitting market data into key and payload without copying. Hot path. The
    /// `data` payload is only located, as `split` says (`scan::pick_data`); [`super::decode_frame`] validates
    /// every other frame whole.
    fn decode_frame<'a>(&self, text: &'a str, split: Split) -> Result<Frame<'a>, DecodeError>;
    /// Decodes a data payload of one of this exchange's channels by its market and kind. Hot path: no
    /// allocation.
    fn decode_sample(
        &self,
        venue: Venue,
        kind: ChannelKind,
        payload: &str,
        ts_ms: Option<i64>,
    ) -> Result<Sample, DecodeError>;
}

/// An exchange's REST wire knowledge. `venue` is always one of this exchange's markets.
pub trait RestExchange: Sync {
    /// The documented REST base URL.
    fn default_url(&self, venue: Venue) -> &'static str;
    /// Why a configured REST base URL's path would be extended wrongly, and the path it should have.
    fn path_fix(&self, venue: Venue, path: &str) -> Option<PathFix>;
    /// Our request budget.
    fn budget(&self, venue: Venue) -> RestBudget;
    /// The server-time request.
    fn time_request(&self, venue: Venue) -> RestRequest;
    /// Server time in nanoseconds since the epoch.
    fn parse_server_time(&self, body: &str) -> Result<i64, RestDecodeError>;
    /// One page of the instrument list, with a status filter and a cursor where the exchange pages.
    fn instruments_request(
        &self,
        venue: Venue,
        status: Option<&str>,
        cursor: Option<&str>,
    ) -> RestRequest;
    /// The listings to read for a complete picture (None: the default listing).
    fn listing_statuses(&self, venue: Venue) -> &'static [Option<&'static str>];
    /// Decodes an instruments reply.
    fn parse_instruments(&self, body: &str) -> Result<InstrumentsPage, RestDecodeError>;
    /// One symbol's ticker request.
    fn ticker_request(&self, venue: Venue, symbol: &str) -> RestRequest;
    /// Decodes a ticker reply.
    fn parse_ticker(&self, body: &str) -> Result<RestTicker, RestDecodeError>;
    /// How a non-2xx status must pace us; `retry_after` is the raw header.
    fn classify_status(&self, status: u16, retry_after: Option<&str>) -> RestFailure;
    /// How the exchange's own error code inside a successful answer must pace us; None: count and go on.
    fn venue_error(&self, code: i64) -> Option<RestFailure>;
}
