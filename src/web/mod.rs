//! The HTTP(S) server around the routes of `http`: the exporter-toolkit web configuration (TLS, basic auth,
//! response headers), its reloading, and the bounded accept loop.
//!
//! Owns transport and access control only; what each path answers is `http`'s business.

pub mod config;

mod auth;
mod file;
mod listen;
mod live;
mod server;
mod tls;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use auth::Verdict;
pub use config::{WebConfig, WebConfigError};
pub use listen::listen;
pub use live::{Live, Settings};
pub use server::{Limits, serve};

/// Probes stay open under basic auth: a kubelet cannot send credentials without writing them into the pod
/// spec, and the answers ("Healthy", "Ready") disclose nothing.
const OPEN_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

/// Wraps `router` in the access control and headers of the configuration in force.
pub fn secure(router: Router, live: Arc<Live>) -> Router {
    router.layer(middleware::from_fn_with_state(live, guard))
}

async fn guard(State(live): State<Arc<Live>>, request: Request, next: Next) -> Response {
    let settings = live.current();
    let open = OPEN_PATHS.contains(&request.uri().path());
    let verdict = match &settings.auth {
        Some(auth) if !open => {
            let peer = server::current_peer().map(|p| p.ip());
            auth.check(request.headers().get(header::AUTHORIZATION), peer)
                .await
        }
        _ => Verdict::Allowed,
    };
    let mut response = match verdict {
        Verdict::Allowed => next.run(request).await,
        Verdict::Denied => unauthorized(),
        Verdict::Busy => busy(),
    };
    for (name, value) in &settings.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Too many unverified requests from this address at once: try again shortly, without a bcrypt check now.
fn busy() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "1")],
        Body::from("Too many authentication attempts in progress from this address\n"),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"marketfeed_exporter\", charset=\"UTF-8\"",
        )],
        Body::from("Unauthorized\n"),
    )
        .into_response()
}
