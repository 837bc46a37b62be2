//! Gateway intents (discord-api-docs `events/gateway.mdx`, "List of Intents").

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use serde::{Deserialize, Serialize};

/// A set of Gateway intents, the `intents` bit field sent in IDENTIFY.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Intents(u64);

impl Intents {
    /// `GUILDS (1 << 0)`: guild, channel and thread lifecycle events.
    pub const GUILDS: Self = Self(1 << 0);
    /// `GUILD_MEMBERS (1 << 1)`, privileged.
    pub const GUILD_MEMBERS: Self = Self(1 << 1);
    /// `GUILD_MODERATION (1 << 2)`.
    pub const GUILD_MODERATION: Self = Self(1 << 2);
    /// `GUILD_EXPRESSIONS (1 << 3)`.
    pub const GUILD_EXPRESSIONS: Self = Self(1 << 3);
    /// `GUILD_INTEGRATIONS (1 << 4)`.
    pub const GUILD_INTEGRATIONS: Self = Self(1 << 4);
    /// `GUILD_WEBHOOKS (1 << 5)`.
    pub const GUILD_WEBHOOKS: Self = Self(1 << 5);
    /// `GUILD_INVITES (1 << 6)`.
    pub const GUILD_INVITES: Self = Self(1 << 6);
    /// `GUILD_VOICE_STATES (1 << 7)`: VOICE_STATE_UPDATE.
    pub const GUILD_VOICE_STATES: Self = Self(1 << 7);
    /// `GUILD_PRESENCES (1 << 8)`, privileged.
    pub const GUILD_PRESENCES: Self = Self(1 << 8);
    /// `GUILD_MESSAGES (1 << 9)`.
    pub const GUILD_MESSAGES: Self = Self(1 << 9);
    /// `GUILD_MESSAGE_REACTIONS (1 << 10)`.
    pub const GUILD_MESSAGE_REACTIONS: Self = Self(1 << 10);
    /// `GUILD_MESSAGE_TYPING (1 << 11)`.
    pub const GUILD_MESSAGE_TYPING: Self = Self(1 << 11);
    /// `DIRECT_MESSAGES (1 << 12)`.
    pub const DIRECT_MESSAGES: Self = Self(1 << 12);
    /// `DIRECT_MESSAGE_REACTIONS (1 << 13)`.
    pub const DIRECT_MESSAGE_REACTIONS: Self = Self(1 << 13);
    /// `DIRECT_MESSAGE_TYPING (1 << 14)`.
    pub const DIRECT_MESSAGE_TYPING: Self = Self(1 << 14);
    /// `MESSAGE_CONTENT (1 << 15)`, privileged.
    pub const MESSAGE_CONTENT: Self = Self(1 << 15);
    /// `GUILD_SCHEDULED_EVENTS (1 << 16)`.
    pub const GUILD_SCHEDULED_EVENTS: Self = Self(1 << 16);
    /// `AUTO_MODERATION_CONFIGURATION (1 << 20)`.
    pub const AUTO_MODERATION_CONFIGURATION: Self = Self(1 << 20);
    /// `AUTO_MODERATION_EXECUTION (1 << 21)`.
    pub const AUTO_MODERATION_EXECUTION: Self = Self(1 << 21);
    /// `GUILD_MESSAGE_POLLS (1 << 24)`.
    pub const GUILD_MESSAGE_POLLS: Self = Self(1 << 24);
    /// `DIRECT_MESSAGE_POLLS (1 << 25)`.
    pub const DIRECT_MESSAGE_POLLS: Self = Self(1 << 25);

    /// The privileged intents, with their names as the Developer Portal shows
    /// them (discord-api-docs `events/gateway.mdx`, "Privileged Intents").
    pub const PRIVILEGED: [(Self, &'static str); 3] = [
        (Self::GUILD_MEMBERS, "GUILD_MEMBERS (Server Members Intent)"),
        (Self::GUILD_PRESENCES, "GUILD_PRESENCES (Presence Intent)"),
        (
            Self::MESSAGE_CONTENT,
            "MESSAGE_CONTENT (Message Content Intent)",
        ),
    ];

    /// An intent set from raw bits (unknown bits are kept).
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every intent of `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the privileged intents in this set.
    #[must_use]
    pub fn privileged_names(self) -> Vec<&'static str> {
        Self::PRIVILEGED
            .iter()
            .filter(|(intent, _)| self.contains(*intent))
            .map(|(_, name)| *name)
            .collect()
    }
}

impl BitOr for Intents {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Intents {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Intents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Intents({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Intents;

    #[test]
    fn project_intents_are_129_and_not_privileged() {
        let intents = Intents::GUILDS | Intents::GUILD_VOICE_STATES;
        assert_eq!(intents.bits(), 129);
        assert!(intents.privileged_names().is_empty());
    }

    #[test]
    fn lists_privileged_intents() {
        let intents = Intents::GUILDS | Intents::MESSAGE_CONTENT | Intents::GUILD_MEMBERS;
        let names = intents.privileged_names();
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("GUILD_MEMBERS"));
        assert!(names[1].starts_with("MESSAGE_CONTENT"));
    }
}
