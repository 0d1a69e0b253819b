//! Answers that list every symbol (the status page, `/api/v1/symbols`) hold a few megabytes each at 10 000
//! subscriptions. Two are built and sent at once; a third waits. The turn is held until the answer has been
//! written: the body is handed to hyper in 64 KiB slices, and hyper asks for the next only once its small
//! write buffer has room, so a slow or greedy reader cannot pile answers up in memory.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slices handed to hyper at a time.
const SLICE: usize = 64 * 1024;
/// No listing is larger; the bound only stops an unexpected body from being buffered whole.
const MAX_BODY: usize = 256 << 20;

/// Takes a turn, builds the answer, and paces it out holding the turn.
pub(super) async fn paced(
    State(turns): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(turn) = turns.acquire_owned().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    Response::from_parts(parts, Body::new(Paced { bytes, _turn: turn }))
}

/// A body that yields its bytes a slice at a time and gives its turn back when dropped (sent, or the client
/// went away).
struct Paced {
    bytes: Bytes,
    _turn: OwnedSemaphorePermit,
}

impl hyper::body::Body for Paced {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.bytes.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.bytes.len().min(SLICE);
        let slice = self.bytes.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.len() as u64)
    }
}
