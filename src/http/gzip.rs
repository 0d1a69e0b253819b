//! gzip for every text answer (metrics, JSON, the status page) when the client accepts it, as Prometheus' Go client
//! does for `/metrics`: Prometheus always asks, and an exposition compresses about tenfold.
//!
//! The answers are rendered in memory, so the middleware compresses the whole body at once.

use std::io::Write;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Below this, gzip's own framing outweighs what it saves.
const MIN_SIZE: usize = 512;
/// No route renders more than this; the bound only keeps a future streaming route from being buffered whole.
const MAX_BODY: usize = 512 << 20;

/// Compresses the response when the request accepts gzip and the body is text or JSON of some size.
pub(super) async fn gzip(request: Request, next: Next) -> Response {
    let accepts = accepts_gzip(request.headers());
    let response = next.run(request).await;
    if !compressible(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // A cache between us and the client must keep the two encodings apart.
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if !accepts || bytes.len() < MIN_SIZE {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Some(compressed) = compress(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, Body::from(compressed))
}

/// gzip at level 1: most of the size saving for a fraction of the default level's CPU, as an exposition is very
/// repetitive text.
pub fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    compress_pieces([bytes], bytes.len())
}

/// One gzip stream of the pieces in order, as they come (the same bytes as [`compress`] of their concatenation);
/// `expected` is about how many bytes they add up to.
pub(super) fn compress_pieces<P: AsRef<[u8]>>(
    pieces: impl IntoIterator<Item = P>,
    expected: usize,
) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(expected / 8), Compression::fast());
    for piece in pieces {
        encoder.write_all(piece.as_ref()).ok()?;
    }
    encoder.finish().ok()
}

/// Whether the request accepts gzip.
pub(super) fn accepted(headers: &HeaderMap) -> bool {
    accepts_gzip(headers)
}

/// Text and JSON that nobody has encoded yet.
fn compressible(headers: &HeaderMap) -> bool {
    let text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/") || ct.starts_with("application/json"));
    text && !headers.contains_key(header::CONTENT_ENCODING)
}

/// `Accept-Encoding` names gzip (or `*`) with a non-zero quality, and does not refuse gzip by name.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") {
                gzip = Some(quality > 0.0);
            } else if coding == "*" {
                any = Some(quality > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in accept {
            map.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn accept_encoding_forms() {
        for (accept, expected) in [
            (&["gzip"][..], true),
            (&["gzip, deflate, br"], true),
            (&["identity"], false),
            (&[], false),
            (&["br", "GZIP;q=0.5"], true),
            (&["gzip;q=0"], false),
            (&["*"], true),
            (&["*, gzip;q=0"], false),
            (&["deflate;q=1.0, *;q=0"], false),
        ] {
            assert_eq!(accepts_gzip(&headers(accept)), expected, "{accept:?}");
        }
    }
}
