//! The routing table: `(method, path segments) -> Route`, pure and unit-tested.
//!
//! ```text
//!  method   path                        route
//!  GET      /health                     Health
//!  GET      /ws                         Ws
//!  POST     /create-room                CreateRoom
//!  OPTIONS  /create-room                Preflight
//!  DELETE   /end-room/{channelId}       EndRoom(channelId)
//!  OPTIONS  /end-room/{channelId}       Preflight
//!  POST     /internal/events            InternalEvents
//! ```
//!
//! `GET /metrics` is served on `METRICS_ADDR` only ([`route_metrics`]).
//!
//! `channelId` must be a Discord snowflake (ASCII digits, 1–20 of them, fitting a `u64`)
//! before anything is looked up or sent to Discord; the Discord URL is later built from the
//! parsed integer, so `123%2F..`, `-1`, `1e3` or 21 digits never reach Discord.

use http::Method;

use crate::config::parse_snowflake_str;
use crate::error::ApiError;

/// A recognised request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /health`.
    Health,
    /// `GET /ws`: WebSocket upgrade.
    Ws,
    /// `POST /create-room`.
    CreateRoom,
    /// `DELETE /end-room/{channelId}` with the parsed channel id.
    EndRoom(u64),
    /// `POST /internal/events`: the worker's signed webhook.
    InternalEvents,
    /// `OPTIONS` on a CORS route (`/create-room`, `/end-room/{id}`).
    Preflight,
    /// `GET /metrics` (metrics listener only).
    Metrics,
}

impl Route {
    /// Whether CORS headers apply to this route's responses.
    pub fn is_cors(self) -> bool {
        matches!(self, Self::CreateRoom | Self::EndRoom(_) | Self::Preflight)
    }
}

/// Why a request matches no route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// 404: no such path.
    NotFound,
    /// 405: the path exists, but not with this method; the `Allow` header value.
    MethodNotAllowed(&'static str),
    /// 400: `channelId` is not a Discord snowflake.
    BadChannelId,
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => Self::NotFound("not found".into()),
            RouteError::MethodNotAllowed(allow) => Self::MethodNotAllowed(allow),
            RouteError::BadChannelId => {
                Self::BadRequest("channelId must be a Discord snowflake (digits only)".into())
            }
        }
    }
}

/// Every `(method, path)` pair of the public listener, as documented in `docs/openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ws"),
    ("POST", "/create-room"),
    ("OPTIONS", "/create-room"),
    ("DELETE", "/end-room/{channelId}"),
    ("OPTIONS", "/end-room/{channelId}"),
    ("POST", "/internal/events"),
];

/// Routes a request of the public listener. `path` is the URI path (no query).
///
/// # Errors
/// [`RouteError`] for an unknown path (404), a wrong method (405) or a bad `channelId` (400).
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(RouteError::NotFound);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match (segments.as_slice(), method) {
        (["health"], &Method::GET) => Ok(Route::Health),
        (["health"], _) => Err(RouteError::MethodNotAllowed("GET")),
        (["ws"], &Method::GET) => Ok(Route::Ws),
        (["ws"], _) => Err(RouteError::MethodNotAllowed("GET")),
        (["create-room"], &Method::POST) => Ok(Route::CreateRoom),
        (["create-room"], &Method::OPTIONS) => Ok(Route::Preflight),
        (["create-room"], _) => Err(RouteError::MethodNotAllowed("POST, OPTIONS")),
        (["end-room", id], m) => {
            // The id is checked before the method so that nothing else is ever looked up.
            let id = parse_snowflake_str(id).ok_or(RouteError::BadChannelId)?;
            match *m {
                Method::DELETE => Ok(Route::EndRoom(id)),
                Method::OPTIONS => Ok(Route::Preflight),
                _ => Err(RouteError::MethodNotAllowed("DELETE, OPTIONS")),
            }
        }
        (["internal", "events"], &Method::POST) => Ok(Route::InternalEvents),
        (["internal", "events"], _) => Err(RouteError::MethodNotAllowed("POST")),
        _ => Err(RouteError::NotFound),
    }
}

/// Routes a request of the metrics listener (`METRICS_ADDR`): only `GET /metrics`.
///
/// # Errors
/// [`RouteError::NotFound`] or [`RouteError::MethodNotAllowed`].
pub fn route_metrics(method: &Method, path: &str) -> Result<Route, RouteError> {
    match (path, method) {
        ("/metrics", &Method::GET) => Ok(Route::Metrics),
        ("/metrics", _) => Err(RouteError::MethodNotAllowed("GET")),
        _ => Err(RouteError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RouteError::*;

    #[test]
    fn table() {
        let m = |s: &str| Method::from_bytes(s.as_bytes()).unwrap();
        let cases: &[(&str, &str, Result<Route, RouteError>)] = &[
            ("GET", "/health", Ok(Route::Health)),
            ("POST", "/health", Err(MethodNotAllowed("GET"))),
            ("GET", "/ws", Ok(Route::Ws)),
            ("POST", "/create-room", Ok(Route::CreateRoom)),
            ("OPTIONS", "/create-room", Ok(Route::Preflight)),
            (
                "GET",
                "/create-room",
                Err(MethodNotAllowed("POST, OPTIONS")),
            ),
            (
                "DELETE",
                "/end-room/81384788765712384",
                Ok(Route::EndRoom(81384788765712384)),
            ),
            ("OPTIONS", "/end-room/1", Ok(Route::Preflight)),
            (
                "GET",
                "/end-room/1",
                Err(MethodNotAllowed("DELETE, OPTIONS")),
            ),
            (
                "DELETE",
                "/end-room/18446744073709551615",
                Ok(Route::EndRoom(u64::MAX)),
            ),
            (
                "DELETE",
                "/end-room/18446744073709551616",
                Err(BadChannelId),
            ),
            (
                "DELETE",
                "/end-room/123456789012345678901",
                Err(BadChannelId),
            ),
            ("DELETE", "/end-room/123/messages", Err(NotFound)),
            (
                "DELETE",
                "/end-room/123%2F..%2Fguilds%2F1",
                Err(BadChannelId),
            ),
            ("DELETE", "/end-room/-1", Err(BadChannelId)),
            ("DELETE", "/end-room/1e3", Err(BadChannelId)),
            ("DELETE", "/end-room/+1", Err(BadChannelId)),
            ("DELETE", "/end-room/0", Err(BadChannelId)),
            ("DELETE", "/end-room/", Err(BadChannelId)),
            ("DELETE", "/end-room", Err(NotFound)),
            ("DELETE", "/end-room/１２", Err(BadChannelId)),
            ("POST", "/internal/events", Ok(Route::InternalEvents)),
            ("OPTIONS", "/internal/events", Err(MethodNotAllowed("POST"))),
            ("GET", "/metrics", Err(NotFound)),
            ("GET", "/", Err(NotFound)),
            ("GET", "", Err(NotFound)),
            ("GET", "/health/", Err(NotFound)),
            ("GET", "//health", Err(NotFound)),
            ("GET", "/HEALTH", Err(NotFound)),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(&m(method), path), *want, "{method} {path}");
        }
    }

    #[test]
    fn metrics_table() {
        assert_eq!(route_metrics(&Method::GET, "/metrics"), Ok(Route::Metrics));
        assert_eq!(
            route_metrics(&Method::POST, "/metrics"),
            Err(MethodNotAllowed("GET"))
        );
        assert_eq!(route_metrics(&Method::GET, "/health"), Err(NotFound));
    }

    #[test]
    fn route_table_matches_router() {
        for (method, path) in ROUTES {
            let path = path.replace("{channelId}", "42");
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert!(route(&method, &path).is_ok(), "{method} {path}");
        }
    }
}
