//! Rooms: the voice channels this hub created, who created them, and the rules around them.
//!
//! - [`RoomStore`]: the registry seam (channel -> owner `sub`, name, times) plus idempotency
//!   keys; [`FileRoomStore`] keeps both in `DATA_DIR/rooms.json` with atomic writes. With
//!   `REDIS_URL`, [`RedisRoomStore`] keeps them in Redis, shared by every replica; the routes
//!   use either through the async [`Registry`].
//! - [`CreateRateLimiter`]: `ROOM_CREATE_PER_MINUTE` per user, on an explicit clock.
//! - [`idle_rooms`]: which rooms the idle sweeper deletes (pure); [`sweeper`] runs it.
//!
//! Everything is keyed by guild, so serving several guilds later is configuration.

mod file_store;
mod rate_limit;
mod redis_store;
mod registry;
mod store;
pub mod sweeper;

pub use file_store::FileRoomStore;
pub use rate_limit::CreateRateLimiter;
pub use redis_store::RedisRoomStore;
pub use registry::Registry;
pub use store::{CreatedRoom, KeyState, Room, RoomStore, StoreError};
pub use sweeper::idle_rooms;

/// How long an idempotency key is remembered: 24 hours, in milliseconds.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
