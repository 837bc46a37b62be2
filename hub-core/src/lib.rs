//! The Spell Coven hub: public HTTP API, WebSocket fan-out, JWT and webhook verification.
