//! The guild's event stream: seq assignment, encode-once frames, the replay buffer.
//!
//! Each event is serialised ONCE into the complete text of its WebSocket message
//! (`{"v":1,"type":"event","event":E,"payload":{...},"ts":ms,"seq":n}`, contract §3.4) and
//! kept as [`Bytes`]; every client queue and the replay buffer share that one allocation.
//! The replay buffer is bounded by count (`REPLAY_MAX_EVENTS`) and by age; a `since` older
//! than what it holds gets a snapshot instead (contract §3.3).

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Serialize;

use super::event::{ROOM_CREATED, ROOM_DELETED, Snowflake, VOICE_JOINED, VOICE_LEFT};
use super::presence::{Emitted, Presence};

/// One event of the stream, as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its seq.
    pub seq: u64,
    /// When the hub emitted it (unix milliseconds).
    pub ts_ms: i64,
    /// The complete message text sent to clients.
    pub frame: Bytes,
}

/// What a `since` resume gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every event after `since` is held: these frames, in order (maybe none).
    Events(Vec<Bytes>),
    /// Some event after `since` is gone (or `since` is ahead of the stream): send a snapshot.
    TooOld,
}

/// The replay buffer of one guild stream, bounded by count and age.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    events: VecDeque<StoredEvent>,
    max_events: usize,
    max_age_ms: i64,
    /// Seq of the latest event (0 before the first event).
    head: u64,
}

impl ReplayBuffer {
    /// An empty buffer whose stream continues after `head`.
    pub fn new(head: u64, max_events: usize, max_age_ms: i64) -> Self {
        Self {
            events: VecDeque::new(),
            max_events,
            max_age_ms,
            head,
        }
    }

    /// Seq of the latest event of the stream.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Events currently held, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter()
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends the next event: assigns seq = head + 1, encodes the frame once, evicts what is
    /// over the count or age bound. Returns the stored event.
    pub fn push(&mut self, guild_id: u64, event: &Emitted, ts_ms: i64) -> StoredEvent {
        self.head += 1;
        let stored = StoredEvent {
            seq: self.head,
            ts_ms,
            frame: encode_event(guild_id, event, ts_ms, self.head),
        };
        self.events.push_back(stored.clone());
        while self.events.len() > self.max_events {
            self.events.pop_front();
        }
        self.expire(ts_ms);
        stored
    }

    /// Restores an event read back from disk (seqs must increase).
    pub fn restore(&mut self, event: StoredEvent) {
        if self.events.back().is_none_or(|last| event.seq > last.seq) {
            self.head = self.head.max(event.seq);
            self.events.push_back(event);
            while self.events.len() > self.max_events {
                self.events.pop_front();
            }
        }
    }

    /// Moves the head forward without events (after a crash: seqs that may have been used
    /// are skipped, and the held events no longer connect to the head, so they are dropped).
    pub fn skip_to(&mut self, head: u64) {
        if head > self.head {
            self.head = head;
            self.events.clear();
        }
    }

    /// Drops every held event (the head stays).
    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// Drops events older than the age bound.
    pub fn expire(&mut self, now_ms: i64) {
        let oldest_allowed = now_ms.saturating_sub(self.max_age_ms);
        while self
            .events
            .front()
            .is_some_and(|e| e.ts_ms < oldest_allowed)
        {
            self.events.pop_front();
        }
    }

    /// The events after `since`, if all of them are still held (contract §3.3).
    pub fn since(&mut self, since: u64, now_ms: i64) -> Replay {
        self.expire(now_ms);
        if since > self.head {
            return Replay::TooOld;
        }
        if since == self.head {
            return Replay::Events(Vec::new());
        }
        match self.events.front() {
            Some(first) if first.seq <= since + 1 => {
                let skip = usize::try_from(since + 1 - first.seq).unwrap_or(usize::MAX);
                Replay::Events(
                    self.events
                        .iter()
                        .skip(skip)
                        .map(|e| e.frame.clone())
                        .collect(),
                )
            }
            _ => Replay::TooOld,
        }
    }
}

#[derive(Serialize)]
struct EventFrame<'a, P> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    event: &'a str,
    payload: P,
    ts: i64,
    seq: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelPayload<'a> {
    guild_id: Snowflake,
    channel_id: Snowflake,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Snowflake>,
    /// `room.created` always carries `name` (null when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Option<&'a str>>,
}

/// Encodes an event's complete message text (contract §3.4).
pub fn encode_event(guild_id: u64, event: &Emitted, ts_ms: i64, seq: u64) -> Bytes {
    let guild_id = Snowflake(guild_id);
    let (name, payload) = match event {
        Emitted::RoomCreated { channel_id, name } => (
            ROOM_CREATED,
            ChannelPayload {
                guild_id,
                channel_id: Snowflake(*channel_id),
                user_id: None,
                name: Some(name.as_deref()),
            },
        ),
        Emitted::RoomDeleted { channel_id } => (
            ROOM_DELETED,
            ChannelPayload {
                guild_id,
                channel_id: Snowflake(*channel_id),
                user_id: None,
                name: None,
            },
        ),
        Emitted::VoiceJoined {
            channel_id,
            user_id,
        }
        | Emitted::VoiceLeft {
            channel_id,
            user_id,
        } => (
            if matches!(event, Emitted::VoiceJoined { .. }) {
                VOICE_JOINED
            } else {
                VOICE_LEFT
            },
            ChannelPayload {
                guild_id,
                channel_id: Snowflake(*channel_id),
                user_id: Some(Snowflake(*user_id)),
                name: None,
            },
        ),
    };
    to_bytes(&EventFrame {
        v: 1,
        kind: "event",
        event: name,
        payload,
        ts: ts_ms,
        seq,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AckFrame<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    event: &'a str,
    guild_id: Snowflake,
    seq: u64,
    resumed: bool,
}

/// `{"v":1,"type":"ack","event":"auth.ok","guildId":G,"seq":S,"resumed":bool}` (contract §3.2).
pub fn encode_ack(guild_id: u64, seq: u64, resumed: bool) -> Bytes {
    to_bytes(&AckFrame {
        v: 1,
        kind: "ack",
        event: "auth.ok",
        guild_id: Snowflake(guild_id),
        seq,
        resumed,
    })
}

#[derive(Serialize)]
struct SnapshotFrame<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    seq: u64,
    payload: SnapshotPayload<'a>,
}

#[derive(Serialize)]
struct SnapshotPayload<'a> {
    rooms: Vec<SnapshotRoom<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRoom<'a> {
    channel_id: Snowflake,
    name: Option<&'a str>,
    members: Vec<Snowflake>,
}

/// `{"v":1,"type":"snapshot","seq":S,"payload":{"rooms":[{"channelId","name","members"}]}}`
/// (contract §3.3): every registered room (even empty) and every channel with members.
pub fn encode_snapshot(presence: &Presence, seq: u64) -> Bytes {
    let rooms = presence
        .rooms()
        .map(|(channel_id, room)| SnapshotRoom {
            channel_id: Snowflake(channel_id),
            name: room.name.as_deref(),
            members: room.members.iter().copied().map(Snowflake).collect(),
        })
        .collect();
    to_bytes(&SnapshotFrame {
        v: 1,
        kind: "snapshot",
        seq,
        payload: SnapshotPayload { rooms },
    })
}

fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    // Serialising these plain structs into a Vec cannot fail (no maps with non-string keys,
    // no failing Serialize impls); an empty frame would only ever be a bug.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::event::Change;
    use serde_json::{Value, json};

    fn joined(channel_id: u64, user_id: u64) -> Emitted {
        Emitted::VoiceJoined {
            channel_id,
            user_id,
        }
    }

    fn json_of(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap_or(Value::Null)
    }

    #[test]
    fn frames_match_the_contract() {
        let f = encode_event(1, &joined(2, 3), 1_700_000_000_000, 7);
        assert_eq!(
            std::str::from_utf8(&f).ok(),
            Some(
                r#"{"v":1,"type":"event","event":"voice.joined","payload":{"guildId":"1","channelId":"2","userId":"3"},"ts":1700000000000,"seq":7}"#
            )
        );
        let f = encode_event(
            1,
            &Emitted::RoomCreated {
                channel_id: 2,
                name: None,
            },
            5,
            8,
        );
        assert_eq!(
            json_of(&f)["payload"],
            json!({"guildId":"1","channelId":"2","name":null})
        );
        let f = encode_event(1, &Emitted::RoomDeleted { channel_id: 2 }, 5, 9);
        assert_eq!(
            json_of(&f)["payload"],
            json!({"guildId":"1","channelId":"2"})
        );
        assert_eq!(
            json_of(&encode_ack(1, 9, true)),
            json!({"v":1,"type":"ack","event":"auth.ok","guildId":"1","seq":9,"resumed":true})
        );
    }

    #[test]
    fn snapshot_lists_rooms_and_members() {
        let mut p = Presence::new();
        p.apply(&Change::RoomCreated {
            channel_id: 5,
            name: Some("t".into()),
        });
        p.apply(&Change::VoiceJoined {
            channel_id: 6,
            user_id: 9,
        });
        assert_eq!(
            json_of(&encode_snapshot(&p, 4)),
            json!({"v":1,"type":"snapshot","seq":4,"payload":{"rooms":[
                {"channelId":"5","name":"t","members":[]},
                {"channelId":"6","name":null,"members":["9"]}
            ]}})
        );
    }

    #[test]
    fn seq_increases_by_one_and_count_bound_holds() {
        let mut buf = ReplayBuffer::new(0, 3, 60_000);
        for i in 1..=5 {
            assert_eq!(buf.push(1, &joined(2, i), 0).seq, i);
        }
        assert_eq!(buf.head(), 5);
        assert_eq!(buf.len(), 3);
        assert_eq!(buf.since(1, 0), Replay::TooOld, "event 2 was evicted");
        assert!(matches!(buf.since(2, 0), Replay::Events(v) if v.len() == 3));
        assert!(matches!(buf.since(4, 0), Replay::Events(v) if v.len() == 1));
        assert_eq!(buf.since(5, 0), Replay::Events(vec![]));
        assert_eq!(buf.since(6, 0), Replay::TooOld, "ahead of the stream");
    }

    #[test]
    fn replay_is_in_order_without_duplicates() {
        let mut buf = ReplayBuffer::new(0, 100, 60_000);
        let frames: Vec<Bytes> = (1..=10)
            .map(|i| buf.push(1, &joined(2, i), 0).frame)
            .collect();
        assert_eq!(buf.since(4, 0), Replay::Events(frames[4..].to_vec()));
        assert_eq!(buf.since(0, 0), Replay::Events(frames));
    }

    #[test]
    fn age_bound_expires_old_events() {
        let mut buf = ReplayBuffer::new(0, 100, 1_000);
        buf.push(1, &joined(2, 1), 0);
        buf.push(1, &joined(2, 2), 500);
        assert!(matches!(buf.since(0, 900), Replay::Events(v) if v.len() == 2));
        assert_eq!(buf.since(0, 1_200), Replay::TooOld, "event 1 aged out");
        assert!(matches!(buf.since(1, 1_200), Replay::Events(v) if v.len() == 1));
        assert_eq!(buf.since(1, 1_600), Replay::TooOld);
        assert_eq!(buf.since(2, 1_600), Replay::Events(vec![]));
    }

    #[test]
    fn skip_to_drops_events_that_no_longer_connect() {
        let mut buf = ReplayBuffer::new(0, 100, 60_000);
        buf.push(1, &joined(2, 1), 0);
        buf.skip_to(1_000);
        assert_eq!(buf.head(), 1_000);
        assert!(buf.is_empty());
        assert_eq!(buf.since(1, 0), Replay::TooOld);
        assert_eq!(buf.push(1, &joined(2, 2), 0).seq, 1_001);
    }
}
