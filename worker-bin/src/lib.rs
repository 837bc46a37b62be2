//! The Spell Coven worker: one Discord Gateway session, forwarded to the hub.
