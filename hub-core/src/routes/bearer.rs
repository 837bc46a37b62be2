//! `Authorization: Bearer <JWT>` (RFC 6750 §2.1) -> verified claims, or 401.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::auth::{Claims, JwtError, JwtVerifier};
use crate::error::ApiError;

/// The bearer token of a request, if exactly one well-formed `Authorization` header has one.
pub(crate) fn token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed authorization header".into()))?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(ApiError::Unauthorized("missing bearer token".into())),
    };
    if token.is_empty() {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    }
    Ok(token)
}

/// Verifies the request's bearer JWT.
pub(crate) async fn authenticate(
    headers: &HeaderMap,
    jwt: &JwtVerifier,
    now_unix: i64,
) -> Result<Claims, ApiError> {
    let token = token(headers)?;
    match jwt.verify(token, now_unix).await {
        Ok(claims) => Ok(claims),
        // The keys cannot be fetched: not the caller's fault, so not a 401.
        Err(JwtError::KeysUnavailable) => Err(ApiError::Unavailable {
            message: "signing keys unavailable; try again".into(),
            retry_after: Some(std::time::Duration::from_secs(5)),
        }),
        Err(e) => {
            tracing::debug!(reason = e.reason(), "bearer token refused");
            Err(ApiError::Unauthorized(format!("invalid token: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert_eq!(token(&h("Bearer abc")), Ok("abc"));
        assert_eq!(token(&h("bearer abc")), Ok("abc"));
        assert!(token(&h("Basic abc")).is_err());
        assert!(token(&h("Bearer ")).is_err());
        assert!(token(&HeaderMap::new()).is_err());
    }
}
