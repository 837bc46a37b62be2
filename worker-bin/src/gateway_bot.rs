//! `GET {DISCORD_API_BASE}/gateway/bot`: the Gateway URL and the identify
//! budget (`events/gateway.mdx`, "Get Gateway Bot").

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::secret::Secret;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 64 * 1024;

/// Why `GET /gateway/bot` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayBotError {
    /// 401: Discord refused the token. Not retried.
    Unauthorized,
    /// Anything else (network, 5xx, 429, a body that does not parse).
    Unavailable(String),
}

impl std::fmt::Display for GatewayBotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthorized => f.write_str(
                "GET /gateway/bot answered 401: DISCORD_BOT_TOKEN is wrong or was reset; copy the \
                 current token from the Bot page of the developer portal",
            ),
            Self::Unavailable(e) => write!(f, "GET /gateway/bot failed: {e}"),
        }
    }
}

impl std::error::Error for GatewayBotError {}

/// Ask Discord where to connect.
///
/// # Errors
/// [`GatewayBotError::Unauthorized`] for a refused token, otherwise
/// [`GatewayBotError::Unavailable`].
pub async fn fetch(
    api_base: &str,
    token: &Secret,
) -> Result<gateway_proto::GatewayInfo, GatewayBotError> {
    let unavailable = |e: String| GatewayBotError::Unavailable(e);
    let tls = crate::tls::client_config().map_err(|e| unavailable(e.to_string()))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::get(format!("{api_base}/gateway/bot"))
        .header(
            http::header::AUTHORIZATION,
            format!("Bot {}", token.expose()),
        )
        .header(
            http::header::USER_AGENT,
            concat!(
                "DiscordBot (https://example.invalid/spell-coven, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ),
        )
        .body(Empty::new())
        .map_err(|_| unavailable("invalid DISCORD_API_BASE".to_owned()))?;
    let call = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .to_bytes();
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(GatewayBotError::Unauthorized);
        }
        if !status.is_success() {
            return Err(unavailable(format!("status {}", status.as_u16())));
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("bad body: {e}")))
    };
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| unavailable("timed out".to_owned()))?
}
