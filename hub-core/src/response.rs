//! Building responses: JSON bodies, JSON errors (`{"message": "..."}`), plain text.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::error::{ApiError, retry_after_secs};

/// The body type of every hub response.
pub type Body = Full<Bytes>;

/// A JSON response with the given status.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// An empty response with the given status.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// Renders an [`ApiError`] as `{"message": "..."}` with its status, `Retry-After` and `Allow`.
pub fn error(err: &ApiError) -> Response<Body> {
    let mut res = json(
        err.status(),
        &serde_json::json!({ "message": err.to_string() }),
    );
    if let Some(wait) = err.retry_after() {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(wait)));
    }
    // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
    if let ApiError::Unauthorized(_) = err {
        res.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    if let ApiError::MethodNotAllowed(allow) = err {
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::time::Duration;

    #[tokio::test]
    async fn error_shape() {
        let res = error(&ApiError::RateLimited(Duration::from_millis(2500)));
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[RETRY_AFTER], "3");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": "too many rooms created; try again later"})
        );
    }
}
