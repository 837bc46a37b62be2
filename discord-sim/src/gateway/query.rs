//! The gateway URL query (gateway.mdx "Connecting": `v`, `encoding`, `compress?`).

use super::codes;
use super::validate::Reject;

/// The transport options asked for in the URL query (gateway.mdx "Gateway URL Query
/// String Params").
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query {
    /// `compress=zlib-stream` was asked for.
    pub(crate) zlib_stream: bool,
}

/// Checks `v=10`, `encoding=json` and an optional `compress=zlib-stream`.
pub(crate) fn parse_query(raw: &str) -> Result<Query, Reject> {
    let mut v = None;
    let mut encoding = None;
    let mut compress = None;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "v" => v = Some(val),
            "encoding" => encoding = Some(val),
            "compress" => compress = Some(val),
            _ => {}
        }
    }
    if v != Some("10") {
        // opcodes-and-status-codes.mdx 4012 "Invalid API version".
        return Err(Reject {
            code: codes::INVALID_API_VERSION,
            reason: "Invalid API version.",
        });
    }
    if encoding != Some("json") {
        // The sim speaks JSON only (etf is real but not simulated); we treat anything else
        // as undecodable.
        return Err(Reject {
            code: codes::DECODE_ERROR,
            reason: "Invalid encoding: discord-sim speaks encoding=json only.",
        });
    }
    match compress {
        None => Ok(Query { zlib_stream: false }),
        Some("zlib-stream") => Ok(Query { zlib_stream: true }),
        Some(_) => Err(Reject {
            code: codes::DECODE_ERROR,
            reason: "Invalid compress: discord-sim supports zlib-stream only.",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_requires_v10_json() {
        assert_eq!(
            parse_query("v=10&encoding=json"),
            Ok(Query { zlib_stream: false })
        );
        assert_eq!(
            parse_query("encoding=json&v=10&compress=zlib-stream"),
            Ok(Query { zlib_stream: true })
        );
        assert_eq!(
            parse_query("v=9&encoding=json").map_err(|r| r.code),
            Err(4012)
        );
        assert_eq!(parse_query("encoding=json").map_err(|r| r.code), Err(4012));
        assert_eq!(
            parse_query("v=10&encoding=etf").map_err(|r| r.code),
            Err(4002)
        );
        assert_eq!(
            parse_query("v=10&encoding=json&compress=zstd-stream").map_err(|r| r.code),
            Err(4002)
        );
    }
}
