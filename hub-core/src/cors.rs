//! CORS for the browser-facing routes (`/create-room`, `/end-room/{id}`).
//!
//! Only origins listed in `CORS_ORIGINS` are echoed, exactly, in `Access-Control-Allow-Origin`;
//! `Vary: Origin` is always set on these routes because the answer depends on `Origin`
//! (Fetch standard, "CORS protocol and HTTP caches"). Never `*`, never `null`. CORS is not
//! authorisation: a request from another origin is still served (the JWT decides), the
//! browser just cannot read the answer. `/internal/events` gets no CORS headers at all.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::{Response, StatusCode};

use crate::response::{Body, empty};

/// The CORS allow-list.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// A policy allowing exactly these origins.
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    /// The request's `Origin` if it is allowed (exact, byte-for-byte match), else `None`.
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let mut values = headers.get_all(ORIGIN).iter();
        let origin = values.next()?;
        if values.next().is_some() {
            return None; // Several Origin headers: ambiguous, allow none.
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }

    /// Adds `Vary: Origin` and, for an allowed origin, the allow-origin header to a response.
    pub fn apply(&self, request_headers: &HeaderMap, res: &mut Response<Body>) {
        let headers = res.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(request_headers) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            // Lets the browser app read Retry-After on 429/503.
            headers.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After"),
            );
        }
    }

    /// The answer to a preflight (`OPTIONS`): `204`, with the allow headers only for an
    /// allowed origin (a disallowed one gets a bare `204` plus `Vary`, which the browser
    /// treats as a refusal).
    pub fn preflight(&self, request_headers: &HeaderMap) -> Response<Body> {
        let mut res = empty(StatusCode::NO_CONTENT);
        let headers = res.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(request_headers) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, DELETE"),
            );
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, X-Idempotency-Key"),
            );
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn echoes_only_listed_origins() {
        let cors = Cors::new(vec!["https://app.example".into()]);
        for (origin, allowed) in [
            (Some("https://app.example"), true),
            (Some("https://app.example.evil"), false),
            (Some("https://APP.example"), false),
            (Some("null"), false),
            (Some("https://app.example/"), false),
            (None, false),
        ] {
            let mut res = empty(StatusCode::OK);
            cors.apply(&req(origin), &mut res);
            assert_eq!(res.headers()[VARY], "Origin");
            assert_eq!(
                res.headers()
                    .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                    .map(|v| v.to_str().unwrap()),
                if allowed { origin } else { None },
                "{origin:?}"
            );
        }
    }

    #[test]
    fn preflight() {
        let cors = Cors::new(vec!["https://app.example".into()]);
        let res = cors.preflight(&req(Some("https://app.example")));
        assert_eq!(res.status(), 204);
        assert_eq!(res.headers()[ACCESS_CONTROL_ALLOW_METHODS], "POST, DELETE");
        assert_eq!(
            res.headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            "Authorization, Content-Type, X-Idempotency-Key"
        );
        let res = cors.preflight(&req(Some("https://other.example")));
        assert_eq!(res.status(), 204);
        assert!(res.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert!(res.headers().get(ACCESS_CONTROL_ALLOW_METHODS).is_none());
    }

    #[test]
    fn duplicate_origin_headers_allow_none() {
        let cors = Cors::new(vec!["https://app.example".into()]);
        let mut h = req(Some("https://app.example"));
        h.append(ORIGIN, HeaderValue::from_static("https://app.example"));
        assert!(cors.allowed_origin(&h).is_none());
    }
}
