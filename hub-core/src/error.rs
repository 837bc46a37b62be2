//! The HTTP API's error type: every failure a route can answer, with its status code.
//!
//! Contract §2: all JSON errors have the shape `{"message": "..."}`; `429` and `503` carry
//! `Retry-After` when the wait is known. [`crate::response::error`] renders an [`ApiError`].

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// A request the hub answers with an error status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: malformed body, out-of-range field, or a path parameter that is not a snowflake.
    BadRequest(String),
    /// 401: missing, malformed, expired or otherwise invalid bearer JWT.
    Unauthorized(String),
    /// 403: authenticated, but not allowed (another user's room, a bad webhook signature).
    Forbidden(String),
    /// 404: no such route or no such room.
    NotFound(String),
    /// 405: the path exists but not with this method; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
    /// 408: the request (body) did not arrive in time.
    RequestTimeout,
    /// 409: the request conflicts with the guild's state (e.g. the 500-channel cap).
    Conflict(String),
    /// 413: the body exceeds the limit.
    PayloadTooLarge,
    /// 429: the user creates rooms too fast; retry after this long.
    RateLimited(Duration),
    /// 502: Discord failed or refused in a way the caller cannot fix.
    BadGateway(String),
    /// 503: temporarily unavailable; `Retry-After` when the wait is known.
    Unavailable {
        /// What is unavailable, in plain words.
        message: String,
        /// How long to wait, when known.
        retry_after: Option<Duration>,
    },
    /// 500: a bug or an unexpected local failure (details are logged, not shown).
    Internal,
}

impl ApiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` delay, if this error has one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(d) => Some(*d),
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::BadGateway(m) => f.write_str(m),
            Self::MethodNotAllowed(_) => f.write_str("method not allowed"),
            Self::PayloadTooLarge => f.write_str("request body is larger than 64 KiB"),
            Self::RequestTimeout => f.write_str("request timed out"),
            Self::RateLimited(_) => f.write_str("too many rooms created; try again later"),
            Self::Unavailable { message, .. } => f.write_str(message),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn statuses() {
        assert_eq!(ApiError::PayloadTooLarge.status(), 413);
        assert_eq!(ApiError::RateLimited(Duration::from_secs(1)).status(), 429);
        assert_eq!(
            ApiError::Unavailable {
                message: "x".into(),
                retry_after: None
            }
            .status(),
            503
        );
    }
}
