//! Discord REST: one kept-alive HTTPS client for creating and deleting voice channels.
//!
//! - [`DiscordClient`]: `POST /guilds/{guild}/channels` and `DELETE /channels/{id}` with the
//!   bot token, honouring rate-limit buckets and 429 `retry_after` (never loops).
//! - [`RateLimits`]: the sans-IO bucket bookkeeping (explicit `now`).
//! - [`DiscordError`]: what Discord answered, mapped to the hub's HTTP errors.
//! - [`audit_reason`]: the `X-Audit-Log-Reason` header value.

mod audit;
mod client;
mod error;
mod ratelimit;

pub use audit::audit_reason;
pub use client::{Channel, CreateChannel, DiscordClient, MAX_SHORT_WAIT, UNAUTHORIZED_PAUSE};
pub use error::DiscordError;
pub use ratelimit::{RateLimits, Verdict};
