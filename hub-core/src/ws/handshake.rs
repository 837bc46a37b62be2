//! The HTTP side of `GET /ws`: Origin check and RFC 6455 §4.2 upgrade validation.
//!
//! Pure functions over `http` types, so every refusal is unit-tested without a socket.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Why an upgrade request is refused, with the response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `Origin` not in `CORS_ORIGINS` (contract §3.6) -> 403.
    Origin,
    /// Not a GET (RFC 6455 §4.1: "The method of the request MUST be GET") -> 405.
    Method,
    /// No `Upgrade: websocket` / `Connection: upgrade` -> 426 Upgrade Required.
    NotUpgrade,
    /// `Sec-WebSocket-Version` is not 13 (RFC 6455 §4.4) -> 426 with
    /// `Sec-WebSocket-Version: 13`.
    Version,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes (RFC 6455 §4.2.1) -> 400.
    Key,
}

impl Refusal {
    /// The status and JSON `{"message"}` response for this refusal.
    pub fn response(&self) -> Response<Full<Bytes>> {
        let (status, message) = match self {
            Self::Origin => (StatusCode::FORBIDDEN, "origin not allowed"),
            Self::Method => (
                StatusCode::METHOD_NOT_ALLOWED,
                "websocket upgrade must be a GET",
            ),
            Self::NotUpgrade => (StatusCode::UPGRADE_REQUIRED, "websocket upgrade required"),
            Self::Version => (
                StatusCode::UPGRADE_REQUIRED,
                "unsupported websocket version (13 required)",
            ),
            Self::Key => (
                StatusCode::BAD_REQUEST,
                "missing or invalid sec-websocket-key",
            ),
        };
        let body = serde_json::json!({ "message": message }).to_string();
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            Self::Method => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::NotUpgrade | Self::Version => {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                h.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            _ => {}
        }
        resp
    }
}

/// Checks `Origin` against the allowed list. An empty list allows any origin. A request
/// without `Origin` is not from a browser (browsers always send it on WebSocket requests,
/// RFC 6455 §4.1 item 8) and is allowed: the check exists against cross-site browser pages.
///
/// # Errors
/// [`Refusal::Origin`] when the list is set and the origin is not exactly in it.
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refusal> {
    if allowed.is_empty() {
        return Ok(());
    }
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) if allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::Origin),
    }
}

/// Validates an upgrade request (RFC 6455 §4.2.1) and returns the `Sec-WebSocket-Accept`
/// value for the 101 response.
///
/// # Errors
/// The first [`Refusal`] that applies, in the order method, upgrade headers, version, key.
pub fn accept_key(method: &Method, headers: &HeaderMap) -> Result<String, Refusal> {
    if method != Method::GET {
        return Err(Refusal::Method);
    }
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(Refusal::NotUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes().trim_ascii() != b"13")
    {
        return Err(Refusal::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(Refusal::Key)?
        .as_bytes()
        .trim_ascii();
    // "a base64-encoded value that, when decoded, is 16 bytes in length" (RFC 6455 §4.1).
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(derive_accept_key(key)),
        _ => Err(Refusal::Key),
    }
}

/// The 101 Switching Protocols response.
pub fn switching_protocols(accept: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// Whether a comma-separated header (any of its values) holds `token`, case-insensitively.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h
    }

    #[test]
    fn accepts_the_rfc_example() {
        // RFC 6455 §1.3 example key and accept value.
        assert_eq!(
            accept_key(&Method::GET, &upgrade_headers()),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_owned())
        );
    }

    #[test]
    fn refuses_bad_upgrades() {
        assert_eq!(
            accept_key(&Method::POST, &upgrade_headers()),
            Err(Refusal::Method)
        );
        let mut h = upgrade_headers();
        h.remove(header::UPGRADE);
        assert_eq!(accept_key(&Method::GET, &h), Err(Refusal::NotUpgrade));
        let mut h = upgrade_headers();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(accept_key(&Method::GET, &h), Err(Refusal::NotUpgrade));
        let mut h = upgrade_headers();
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(accept_key(&Method::GET, &h), Err(Refusal::Version));
        let resp = Refusal::Version.response();
        assert_eq!(resp.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(
            resp.headers().get(header::SEC_WEBSOCKET_VERSION),
            Some(&HeaderValue::from_static("13"))
        );
        let mut h = upgrade_headers();
        h.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(accept_key(&Method::GET, &h), Err(Refusal::Key));
        let mut h = upgrade_headers();
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("c2hvcnQ="),
        );
        assert_eq!(accept_key(&Method::GET, &h), Err(Refusal::Key));
    }

    #[test]
    fn origin_must_match_exactly_when_a_list_is_set() {
        let allowed = vec!["https://app.example".to_owned()];
        let mut h = HeaderMap::new();
        assert_eq!(
            check_origin(&h, &allowed),
            Ok(()),
            "no Origin: not a browser"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        assert_eq!(check_origin(&h, &allowed), Ok(()));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example.evil"),
        );
        assert_eq!(check_origin(&h, &allowed), Err(Refusal::Origin));
        assert_eq!(check_origin(&h, &[]), Ok(()), "empty list: any origin");
        assert_eq!(Refusal::Origin.response().status(), StatusCode::FORBIDDEN);
    }
}
