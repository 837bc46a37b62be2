//! The bounded, ordered, at-least-once outbox of hub events, and the
//! acknowledged checkpoint it implies.
//!
//! Every dispatch received from the Gateway is *recorded* here with the room
//! events it produced (possibly none). Events leave the queue only when the
//! hub has answered 2xx, strictly in order. From that the outbox derives the
//! **acknowledged position**: the last dispatch whose events have all been
//! delivered (dispatches that produced nothing count once everything before
//! them is delivered). That position is what is persisted and resumed from,
//! so after a crash Discord replays every dispatch whose events the hub may
//! not have seen; the ids below make the overlap harmless.
//!
//! **Ids.** An event's id is `"<session id>:<seq>:<k>"`: the Gateway session,
//! the dispatch's `s`, and the event's index within the dispatch. A replay of
//! the same dispatch after a RESUME yields the same ids, so the hub's dedupe
//! (contract §4) absorbs it. Repair syncs (below) get a random suffix since
//! they are not a function of the dispatch.
//!
//! **Overflow.** The queue holds at most `capacity` events. When full, the
//! oldest is dropped and a `guild.sync` of the live cache must follow
//! ([`Outbox::take_repair_request`] / [`Outbox::push_repair`]); until that
//! sync is delivered the acknowledged position stays where it was before the
//! first drop, so a crash in between still replays what was lost.
//!
//! **Checkpoint cache.** The outbox also keeps a voice cache equal to the
//! state the hub has seen *at the acknowledged position* (delivered events of
//! a dispatch are applied only once the whole dispatch is delivered). It is
//! saved with the position so that, after a restart, replayed dispatches are
//! diffed against the right previous state and get the same ids.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::RoomEvent;
use crate::voice::VoiceCache;

/// Where a dispatch sits in the Gateway stream: session id and `s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Gateway `session_id`.
    pub session: String,
    /// Dispatch sequence number `s`.
    pub seq: u64,
}

/// One event waiting for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The unique, retry-stable id sent in the body.
    pub id: String,
    /// The event.
    pub event: RoomEvent,
    session: Arc<str>,
    seq: u64,
    /// Local, gap-free number of the recorded dispatch this event belongs to.
    ordinal: u64,
    /// `Some(epoch)` for a repair sync pushed after drops of that epoch.
    repair_epoch: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    ordinal: u64,
    position: Position,
}

/// The outbox. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Entry>,
    capacity: usize,
    /// The position the process started from (state file), ordinal 0.
    initial: Option<Position>,
    /// The last recorded dispatch.
    last: Option<Ack>,
    /// While a repair is outstanding: the acknowledged position at the
    /// first drop (which may be "nothing acknowledged").
    hold: Option<Option<Ack>>,
    epoch: u64,
    repair_requested: bool,
    dropped: u64,
    /// Delivered events of dispatches not yet wholly delivered.
    batch: Vec<(u64, RoomEvent)>,
    checkpoint_cache: VoiceCache,
    /// The acknowledged position last settled into the checkpoint.
    settled: Option<Ack>,
    checkpoint_version: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` events (at least 1),
    /// starting from a checkpoint (`initial` position and the cache the hub
    /// had seen there; `None` and an empty cache on a fresh start).
    #[must_use]
    pub fn new(capacity: usize, initial: Option<Position>, checkpoint_cache: VoiceCache) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            initial,
            last: None,
            hold: None,
            epoch: 0,
            repair_requested: false,
            dropped: 0,
            batch: Vec::new(),
            checkpoint_cache,
            settled: None,
            checkpoint_version: 0,
        }
    }

    /// Events waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events dropped on overflow since start.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the dispatch at `session`/`seq` has not been recorded yet.
    /// A RESUME replays from the acknowledged position, which may be before
    /// what this process has already recorded; those replays are skipped.
    #[must_use]
    pub fn is_new(&self, session: &str, seq: u64) -> bool {
        let last = self
            .last
            .as_ref()
            .map(|a| &a.position)
            .or(self.initial.as_ref());
        match last {
            Some(p) if p.session == session => seq > p.seq,
            _ => true,
        }
    }

    /// Record dispatch `seq` of `session` and the events it produced.
    pub fn record(&mut self, session: &str, seq: u64, events: Vec<RoomEvent>) {
        let ordinal = self.last.as_ref().map_or(0, |a| a.ordinal) + 1;
        let session: Arc<str> = Arc::from(session);
        for (k, event) in events.into_iter().enumerate() {
            self.push(Entry {
                id: format!("{session}:{seq}:{k}"),
                event,
                session: Arc::clone(&session),
                seq,
                ordinal,
                repair_epoch: None,
            });
        }
        self.last = Some(Ack {
            ordinal,
            position: Position {
                session: session.to_string(),
                seq,
            },
        });
        self.settle();
    }

    /// Whether events were dropped since the last repair: the caller must
    /// then [`push_repair`](Self::push_repair) a `guild.sync` of its live
    /// cache (which already reflects everything recorded).
    pub fn take_repair_request(&mut self) -> bool {
        std::mem::take(&mut self.repair_requested)
    }

    /// Queue a repair `guild.sync` after everything recorded so far.
    pub fn push_repair(&mut self, sync: RoomEvent) {
        let Some(last) = self.last.clone() else {
            return;
        };
        if self.queue.len() >= self.capacity {
            self.drop_front();
        }
        self.repair_requested = false;
        self.queue.push_back(Entry {
            id: format!(
                "{}:{}:repair-{:016x}",
                last.position.session,
                last.position.seq,
                fastrand::u64(..)
            ),
            event: sync,
            session: Arc::from(last.position.session.as_str()),
            seq: last.position.seq,
            ordinal: last.ordinal,
            repair_epoch: Some(self.epoch),
        });
    }

    fn push(&mut self, entry: Entry) {
        if self.queue.len() >= self.capacity {
            self.drop_front();
        }
        self.queue.push_back(entry);
    }

    fn drop_front(&mut self) {
        let acked = self.acked();
        let Some(dropped) = self.queue.pop_front() else {
            return;
        };
        // Replacing an old repair by a newer one needs no further repair.
        if dropped.repair_epoch.is_some() {
            return;
        }
        if self.hold.is_none() {
            self.hold = Some(acked);
        }
        self.dropped += 1;
        self.epoch += 1;
        self.repair_requested = true;
        // Delivered events of the dropped event's dispatch are superseded.
        self.batch.retain(|(o, _)| *o != dropped.ordinal);
    }

    /// The next event to deliver.
    #[must_use]
    pub fn front(&self) -> Option<&Entry> {
        self.queue.front()
    }

    /// The hub acknowledged the front event: remove it and advance the
    /// checkpoint.
    pub fn pop_delivered(&mut self) -> Option<Entry> {
        let entry = self.queue.pop_front()?;
        match entry.repair_epoch {
            Some(epoch) if epoch == self.epoch && self.hold.is_some() => {
                // The repair covers everything dropped: what the hub has seen
                // is now exactly this sync.
                self.hold = None;
                self.batch.clear();
                self.checkpoint_cache.apply_event(&entry.event);
            }
            _ if self.hold.is_some() => {
                // Held: superseded by the coming repair sync.
            }
            _ => self.batch.push((entry.ordinal, entry.event.clone())),
        }
        self.settle();
        Some(entry)
    }

    /// Apply delivered events of wholly delivered dispatches to the
    /// checkpoint cache.
    fn settle(&mut self) {
        let acked = self.acked();
        if let Some(acked) = &acked {
            let applied = self
                .batch
                .iter()
                .take_while(|(ordinal, _)| *ordinal <= acked.ordinal)
                .count();
            for (_, event) in self.batch.drain(..applied) {
                self.checkpoint_cache.apply_event(&event);
            }
        }
        if acked != self.settled {
            self.settled = acked;
            self.checkpoint_version += 1;
        }
    }

    fn acked(&self) -> Option<Ack> {
        if let Some(hold) = &self.hold {
            return hold.clone();
        }
        match self.queue.front() {
            Some(front) if front.ordinal <= 1 => self.initial_ack(),
            Some(front) => Some(Ack {
                ordinal: front.ordinal - 1,
                position: Position {
                    session: front.session.to_string(),
                    seq: front.seq.saturating_sub(1),
                },
            }),
            None => self.last.clone().or_else(|| self.initial_ack()),
        }
    }

    fn initial_ack(&self) -> Option<Ack> {
        self.initial.clone().map(|position| Ack {
            ordinal: 0,
            position,
        })
    }

    /// The acknowledged position: resume from here.
    #[must_use]
    pub fn acked_position(&self) -> Option<Position> {
        self.acked().map(|a| a.position)
    }

    /// A number that grows whenever the acknowledged position moves (for
    /// coalescing state-file writes).
    #[must_use]
    pub fn checkpoint_version(&self) -> u64 {
        self.checkpoint_version
    }

    /// The voice cache as the hub has seen it at the acknowledged position.
    /// Voice channels created since are learned from `live` (channel
    /// creation produces no event).
    pub fn checkpoint_cache(&mut self, live: &VoiceCache) -> &VoiceCache {
        self.checkpoint_cache.learn_channels(live);
        &self.checkpoint_cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Occupancy;

    fn joined(c: &str, u: &str) -> RoomEvent {
        RoomEvent::VoiceJoined {
            channel_id: c.into(),
            user_id: u.into(),
        }
    }
    fn left(c: &str, u: &str) -> RoomEvent {
        RoomEvent::VoiceLeft {
            channel_id: c.into(),
            user_id: u.into(),
        }
    }
    fn pos(s: &str, seq: u64) -> Option<Position> {
        Some(Position {
            session: s.into(),
            seq,
        })
    }
    fn outbox(capacity: usize) -> Outbox {
        Outbox::new(capacity, None, VoiceCache::new("1"))
    }

    #[test]
    fn ids_are_session_seq_index() {
        let mut o = outbox(10);
        o.record("s", 5, vec![left("a", "u"), joined("b", "u")]);
        assert_eq!(o.pop_delivered().unwrap().id, "s:5:0");
        assert_eq!(o.pop_delivered().unwrap().id, "s:5:1");
        assert!(o.pop_delivered().is_none());
    }

    #[test]
    fn acked_position_waits_for_the_whole_dispatch() {
        let mut o = outbox(10);
        assert_eq!(o.acked_position(), None);
        o.record("s", 1, vec![]);
        assert_eq!(o.acked_position(), pos("s", 1), "eventless dispatch");
        o.record("s", 2, vec![left("a", "u"), joined("b", "u")]);
        o.record("s", 3, vec![]);
        assert_eq!(o.acked_position(), pos("s", 1));
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("s", 1), "half of dispatch 2");
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("s", 3));
    }

    #[test]
    fn checkpoint_cache_matches_the_acked_position() {
        let mut o = outbox(10);
        o.record("s", 2, vec![left("a", "u"), joined("b", "u")]);
        o.pop_delivered();
        let live = VoiceCache::new("1");
        assert_eq!(o.checkpoint_cache(&live).channel_of("u"), None);
        o.pop_delivered();
        assert_eq!(o.checkpoint_cache(&live).channel_of("u"), Some("b"));
    }

    #[test]
    fn replays_are_recognised() {
        let mut o = Outbox::new(10, pos("s", 7), VoiceCache::new("1"));
        assert!(!o.is_new("s", 7));
        assert!(o.is_new("s", 8));
        assert!(o.is_new("t", 1));
        assert_eq!(o.acked_position(), pos("s", 7));
        o.record("s", 8, vec![joined("a", "u")]);
        assert!(!o.is_new("s", 8));
        assert_eq!(o.acked_position(), pos("s", 7));
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("s", 8));
    }

    #[test]
    fn overflow_drops_oldest_holds_the_ack_until_repaired() {
        let mut o = outbox(3);
        o.record("s", 1, vec![]);
        for seq in 2..=5 {
            o.record("s", seq, vec![joined("a", &format!("u{seq}"))]);
        }
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 1);
        assert_eq!(o.front().unwrap().id, "s:3:0");
        assert!(o.take_repair_request());
        assert!(!o.take_repair_request());
        let sync = RoomEvent::GuildSync {
            voice_states: vec![Occupancy {
                channel_id: "a".into(),
                user_id: "u9".into(),
            }],
        };
        o.push_repair(sync.clone());
        assert_eq!(o.len(), 3, "still bounded");
        assert_eq!(o.dropped(), 2);
        // Held at the position before the first drop.
        assert_eq!(o.acked_position(), pos("s", 1));
        o.pop_delivered();
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("s", 1));
        let repair = o.pop_delivered().unwrap();
        assert!(repair.id.starts_with("s:5:repair-"));
        assert_eq!(repair.event, sync);
        assert_eq!(o.acked_position(), pos("s", 5));
        let live = VoiceCache::new("1");
        let cache = o.checkpoint_cache(&live);
        assert_eq!(cache.channel_of("u9"), Some("a"));
        assert_eq!(cache.channel_of("u4"), None, "superseded by the sync");
    }

    #[test]
    fn a_stale_repair_does_not_release_the_hold() {
        let mut o = outbox(2);
        o.record("s", 1, vec![joined("a", "u1"), joined("a", "u2")]);
        o.record("s", 2, vec![joined("a", "u3")]);
        assert!(o.take_repair_request());
        o.push_repair(RoomEvent::GuildSync {
            voice_states: vec![],
        });
        // More drops after the repair was queued.
        o.record("s", 3, vec![joined("a", "u4")]);
        assert!(o.take_repair_request());
        // Deliver the head, whatever it is; the hold stays until the newest
        // repair arrives.
        while let Some(e) = o.front().cloned() {
            let last = o.len() == 1;
            o.pop_delivered();
            if !last {
                assert_eq!(o.acked_position(), None);
            }
            let _ = e;
        }
        o.push_repair(RoomEvent::GuildSync {
            voice_states: vec![],
        });
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("s", 3));
    }

    #[test]
    fn tiny_capacity_repairs_do_not_loop() {
        let mut o = outbox(1);
        o.record("s", 1, vec![joined("a", "u1"), joined("a", "u2")]);
        while o.take_repair_request() {
            o.push_repair(RoomEvent::GuildSync {
                voice_states: vec![],
            });
        }
        assert_eq!(o.len(), 1);
        assert!(o.front().unwrap().id.contains("repair"));
    }

    #[test]
    fn sessions_change() {
        let mut o = outbox(10);
        o.record("s", 4, vec![joined("a", "u")]);
        o.record("t", 1, vec![]);
        o.record("t", 2, vec![left("a", "u")]);
        assert_eq!(o.acked_position(), None, "nothing delivered yet");
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("t", 1));
        o.pop_delivered();
        assert_eq!(o.acked_position(), pos("t", 2));
    }
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use serde_json::json;

        #[derive(Debug, Clone)]
        enum Op {
            /// A voice update: user -> channel (None = leave).
            Update(u8, Option<u8>),
            /// The hub acknowledges the front event.
            Deliver,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..4, proptest::option::of(0u8..3)).prop_map(|(u, c)| Op::Update(u, c)),
                Just(Op::Deliver),
                Just(Op::Deliver),
            ]
        }

        fn dispatch(user: u8, channel: Option<u8>) -> serde_json::Value {
            json!({"guild_id": "1", "user_id": user.to_string(),
                   "channel_id": channel.map(|c| c.to_string())})
        }

        proptest! {
            /// Whatever the interleaving of dispatches, deliveries and
            /// overflows: ids arrive in recorded order without repeats, the
            /// outbox stays bounded, and the checkpoint cache always equals
            /// the state after replaying the dispatches up to the
            /// acknowledged seq: exactly what a restart resumes from.
            #[test]
            fn checkpoint_matches_a_replay_up_to_the_acked_seq(
                capacity in 1usize..6,
                ops in proptest::collection::vec(op(), 1..80),
            ) {
                let mut live = VoiceCache::new("1");
                let mut outbox = Outbox::new(capacity, None, VoiceCache::new("1"));
                let mut log: Vec<(u64, String, serde_json::Value)> = Vec::new();
                let mut delivered: Vec<String> = Vec::new();
                let mut seq = 0;
                let gc = json!({"id": "1", "channels": [
                    {"id": "0", "type": 2}, {"id": "1", "type": 2}, {"id": "2", "type": 2}],
                    "voice_states": []});
                seq += 1;
                let events = live.apply_dispatch("GUILD_CREATE", &gc);
                outbox.record("s", seq, events);
                log.push((seq, "GUILD_CREATE".into(), gc));
                for op in ops {
                    match op {
                        Op::Update(user, channel) => {
                            seq += 1;
                            let d = dispatch(user, channel);
                            let events = live.apply_dispatch("VOICE_STATE_UPDATE", &d);
                            outbox.record("s", seq, events);
                            while outbox.take_repair_request() {
                                outbox.push_repair(live.sync_event());
                            }
                            log.push((seq, "VOICE_STATE_UPDATE".into(), d));
                        }
                        Op::Deliver => {
                            if let Some(e) = outbox.pop_delivered() {
                                prop_assert!(!delivered.contains(&e.id));
                                delivered.push(e.id);
                            }
                        }
                    }
                    prop_assert!(outbox.len() <= capacity);
                    let mut replay = VoiceCache::new("1");
                    if let Some(acked) = outbox.acked_position() {
                        for (s, name, d) in &log {
                            if *s <= acked.seq {
                                replay.apply_dispatch(name, d);
                            }
                        }
                    }
                    let checkpoint = outbox.checkpoint_cache(&live);
                    prop_assert_eq!(checkpoint.occupancy(), replay.occupancy());
                }
                // Ids arrive in the order they were recorded.
                let order = |id: &String| -> (u64, u64) {
                    let mut parts = id.split(':').skip(1);
                    let seq = parts.next().unwrap().parse().unwrap();
                    let k = parts.next().unwrap().parse().unwrap_or(u64::MAX);
                    (seq, k)
                };
                for pair in delivered.windows(2) {
                    prop_assert!(order(&pair[0]) < order(&pair[1]), "{:?}", pair);
                }
            }
        }
    }
}
