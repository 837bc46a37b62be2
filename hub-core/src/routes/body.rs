//! Reading a request body: at most 64 KiB, within a deadline.
//!
//! A `Content-Length` over the limit is refused before a byte is read; a chunked body is cut
//! off by `http_body_util::Limited` as soon as it passes the limit (413 either way).

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// Largest request body accepted (contract §2: 413 over 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Deadline for receiving a whole body (slow-POST protection).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Refuses a declared `Content-Length` over the limit (or an unparsable one).
pub(crate) fn check_length(headers: &HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(CONTENT_LENGTH) {
        let len: u64 = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::BadRequest("invalid content-length".into()))?;
        if len > MAX_BODY_BYTES as u64 {
            return Err(ApiError::PayloadTooLarge);
        }
    }
    Ok(())
}

/// Reads the whole body under the size limit and the deadline.
pub(crate) async fn read<B>(headers: &HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    check_length(headers)?;
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Err(_) => Err(ApiError::RequestTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge)
        }
        Ok(Err(_)) => Err(ApiError::BadRequest(
            "could not read the request body".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn limits() {
        let empty = HeaderMap::new();
        let ok = read(&empty, Full::new(Bytes::from(vec![b'a'; MAX_BODY_BYTES]))).await;
        assert_eq!(ok.unwrap().len(), MAX_BODY_BYTES);
        let big = read(
            &empty,
            Full::new(Bytes::from(vec![b'a'; MAX_BODY_BYTES + 1])),
        )
        .await;
        assert_eq!(big, Err(ApiError::PayloadTooLarge));
        let mut declared = HeaderMap::new();
        declared.insert(CONTENT_LENGTH, "999999".parse().unwrap());
        let early = read(&declared, Full::new(Bytes::new())).await;
        assert_eq!(early, Err(ApiError::PayloadTooLarge));
    }
}
