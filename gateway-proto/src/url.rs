//! Gateway URLs with the query parameters Discord expects.
//!
//! `events/gateway.mdx`, "Connecting": pass `v` and `encoding` (and
//! optionally `compress`) as query parameters; "Preparing to Resume": the
//! `resume_gateway_url` must be used "with the same query parameters from
//! the initial Connection". twilight #1901 lost them on the resume URL, so
//! every resume failed; here every URL goes through [`gateway_url`].

use crate::config::Compression;

/// The Gateway API version this crate speaks.
pub const API_VERSION: u8 = 10;

/// `base` with `v=10&encoding=json` (and `compress=...` when enabled) set,
/// replacing any `v`, `encoding` or `compress` already present and keeping
/// every other parameter. A bare host gets the `/` path Discord's examples
/// use (`wss://gateway.discord.gg/?v=10&encoding=json`); a fragment is
/// dropped.
#[must_use]
pub fn gateway_url(base: &str, compression: Compression) -> String {
    let base = base.trim();
    let base = base.split_once('#').map_or(base, |(before, _)| before);
    let (path, query) = base.split_once('?').unwrap_or((base, ""));
    let mut url = String::with_capacity(path.len() + query.len() + 48);
    url.push_str(path);
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    if !after_scheme.contains('/') {
        url.push('/');
    }
    url.push_str("?v=");
    url.push_str(&API_VERSION.to_string());
    url.push_str("&encoding=json");
    if let Some(compress) = compression.query_value() {
        url.push_str("&compress=");
        url.push_str(compress);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if matches!(key, "v" | "encoding" | "compress") {
            continue;
        }
        url.push('&');
        url.push_str(pair);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::gateway_url;
    use crate::config::Compression;

    #[test]
    fn adds_parameters_to_a_bare_host() {
        assert_eq!(
            gateway_url("wss://gateway.discord.gg", Compression::None),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            gateway_url(
                "wss://gateway-us-east1-b.discord.gg/",
                Compression::ZlibStream
            ),
            "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json&compress=zlib-stream"
        );
    }

    #[test]
    fn replaces_our_parameters_and_keeps_others() {
        assert_eq!(
            gateway_url(
                "wss://g.example/?v=6&encoding=etf&compress=zlib-stream&foo=bar#frag",
                Compression::ZstdStream
            ),
            "wss://g.example/?v=10&encoding=json&compress=zstd-stream&foo=bar"
        );
        assert_eq!(
            gateway_url("ws://127.0.0.1:9000/gw?x=1", Compression::None),
            "ws://127.0.0.1:9000/gw?v=10&encoding=json&x=1"
        );
    }
}
