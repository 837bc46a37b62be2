//! The REST side: `/api/v10` routes the bridge uses, with Discord's auth, validation,
//! error shapes and rate limits.

mod errors;
pub(crate) mod ratelimit;
mod routes;

pub(crate) use routes::handle;
