//! Snowflake ids: 64-bit, milliseconds since the Discord epoch in the top 42 bits
//! (`developers/reference.mdx`, "Snowflakes"), serialised as strings of digits.

use std::time::{SystemTime, UNIX_EPOCH};

/// The Discord epoch, the first millisecond of 2015, in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Hands out increasing snowflakes that look like Discord's (18-19 digits today).
#[derive(Debug)]
pub(crate) struct SnowflakeGen {
    last: u64,
}

impl SnowflakeGen {
    /// A generator whose ids are all greater than `floor`.
    pub(crate) fn new(floor: u64) -> Self {
        Self { last: floor }
    }

    /// The next id: wall-clock based, but always greater than any id handed out before.
    pub(crate) fn next_id(&mut self) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let stamp = now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
        self.last = stamp.max(self.last.saturating_add(1));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_look_real() {
        let mut generator = SnowflakeGen::new(5);
        let a = generator.next_id();
        let b = generator.next_id();
        assert!(b > a);
        let digits = a.to_string().len();
        assert!((18..=19).contains(&digits), "{a}");
    }

    #[test]
    fn ids_stay_above_the_floor() {
        let mut generator = SnowflakeGen::new(u64::MAX - 10);
        assert_eq!(generator.next_id(), u64::MAX - 9);
    }
}
