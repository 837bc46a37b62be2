//! The metrics listener's service (`METRICS_ADDR`): `GET /metrics` in the Prometheus text
//! exposition format; anything else 404/405.

use http::{Request, Response, StatusCode};

use crate::metrics::Metrics;
use crate::response::{self, Body};
use crate::router::route_metrics;

/// Answers a request on the metrics listener.
pub fn handle_metrics<B>(req: &Request<B>, metrics: &Metrics) -> Response<Body> {
    match route_metrics(req.method(), req.uri().path()) {
        Ok(_) => {
            let mut res = Response::new(http_body_util::Full::new(bytes::Bytes::from(
                metrics.render(),
            )));
            *res.status_mut() = StatusCode::OK;
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        Err(e) => response::error(&e.into()),
    }
}
