//! Presence: which voice channels (rooms) exist and who is in them.
//!
//! Every incoming event is applied as a state transition by [`Presence::apply`], which
//! returns only the differences clients must see. The same function serves `guild.sync`,
//! so a full occupancy report turns into the `voice.left` / `voice.joined` events that
//! bring a client from the old state to the new one (contract §4).
//!
//! Rules (contract §3, lead's semantics):
//! - `voice.joined` for a user already in that channel -> nothing; for a user the hub thinks
//!   is in channel A -> `voice.left` A then `voice.joined` B (a move).
//! - `voice.left` A for a user the hub has in A -> `voice.left` A; otherwise nothing (a stale
//!   report; the next `guild.sync` repairs any divergence).
//! - `room.created` for a known room -> nothing; otherwise the room is registered (even
//!   empty) and announced.
//! - `room.deleted` -> emitted only if the channel was known (registered or with members);
//!   its members are dropped silently: clients drop them on `room.deleted`.
//! - `guild.sync` -> every `voice.left` (leavers and movers) then every `voice.joined`
//!   (arrivals and movers), each sorted by (channel, user); a mover's left precedes its join.
//!   A user listed twice keeps the last entry. Registered rooms stay known even when empty.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::event::Change;
use super::persist::PersistedRoom;

/// One event to emit to clients, produced by [`Presence::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Emitted {
    /// `room.created`.
    RoomCreated {
        /// The voice channel.
        channel_id: u64,
        /// Its name, when known.
        name: Option<String>,
    },
    /// `room.deleted`.
    RoomDeleted {
        /// The voice channel.
        channel_id: u64,
    },
    /// `voice.joined`.
    VoiceJoined {
        /// The voice channel.
        channel_id: u64,
        /// The user.
        user_id: u64,
    },
    /// `voice.left`.
    VoiceLeft {
        /// The voice channel that was left.
        channel_id: u64,
        /// The user.
        user_id: u64,
    },
}

/// A channel the hub knows: a registered room and/or a channel with members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// The room's name, when known.
    pub name: Option<String>,
    /// Created through `room.created` (kept in snapshots even when empty).
    pub registered: bool,
    /// Users in the channel, sorted.
    pub members: BTreeSet<u64>,
}

/// The presence state of one guild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    rooms: BTreeMap<u64, Room>,
    user_channel: HashMap<u64, u64>,
}

impl Presence {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a state from its rooms (e.g. read back from disk). A user listed in several
    /// rooms keeps the last one.
    pub fn from_rooms(rooms: impl IntoIterator<Item = (u64, Room)>) -> Self {
        let mut presence = Self::new();
        for (channel_id, room) in rooms {
            let Room {
                name,
                registered,
                members,
            } = room;
            let entry = presence.rooms.entry(channel_id).or_default();
            entry.name = name;
            entry.registered = registered;
            for user in members {
                presence.put(channel_id, user);
            }
        }
        presence
            .rooms
            .retain(|_, r| r.registered || !r.members.is_empty());
        presence
    }

    /// The state as saved (`DATA_DIR` state file, Redis).
    pub fn to_persisted(&self) -> Vec<PersistedRoom> {
        self.rooms()
            .map(|(channel_id, r)| PersistedRoom {
                channel_id,
                name: r.name.clone(),
                registered: r.registered,
                members: r.members.iter().copied().collect(),
            })
            .collect()
    }

    /// Rebuilds a state saved by [`Presence::to_persisted`].
    pub fn from_persisted(rooms: &[PersistedRoom]) -> Self {
        Self::from_rooms(rooms.iter().map(|r| {
            (
                r.channel_id,
                Room {
                    name: r.name.clone(),
                    registered: r.registered,
                    members: r.members.iter().copied().collect(),
                },
            )
        }))
    }

    /// Every known channel in id order: registered rooms (even empty) and channels with
    /// members. This is what a snapshot lists.
    pub fn rooms(&self) -> impl Iterator<Item = (u64, &Room)> {
        self.rooms.iter().map(|(id, room)| (*id, room))
    }

    /// Number of users in a channel, `None` if the channel is unknown.
    pub fn members(&self, channel_id: u64) -> Option<usize> {
        self.rooms.get(&channel_id).map(|r| r.members.len())
    }

    /// Registers a room without emitting anything (state restored from the room registry
    /// after a crash lost the stream state). Returns whether it was new.
    pub fn adopt(&mut self, channel_id: u64, name: Option<String>) -> bool {
        let room = self.rooms.entry(channel_id).or_default();
        if room.registered {
            return false;
        }
        room.registered = true;
        if name.is_some() {
            room.name = name;
        }
        true
    }

    /// Number of users in voice channels.
    pub fn user_count(&self) -> usize {
        self.user_channel.len()
    }

    /// The channel a user is in.
    pub fn channel_of(&self, user_id: u64) -> Option<u64> {
        self.user_channel.get(&user_id).copied()
    }

    /// Applies a change and returns the events to emit, in order (see the module docs).
    pub fn apply(&mut self, change: &Change) -> Vec<Emitted> {
        let mut out = Vec::new();
        match change {
            Change::RoomCreated { channel_id, name } => {
                let room = self.rooms.entry(*channel_id).or_default();
                if !room.registered {
                    room.registered = true;
                    if name.is_some() {
                        room.name.clone_from(name);
                    }
                    out.push(Emitted::RoomCreated {
                        channel_id: *channel_id,
                        name: room.name.clone(),
                    });
                }
            }
            Change::RoomDeleted { channel_id } => {
                if let Some(room) = self.rooms.remove(channel_id) {
                    for user in &room.members {
                        self.user_channel.remove(user);
                    }
                    out.push(Emitted::RoomDeleted {
                        channel_id: *channel_id,
                    });
                }
            }
            Change::VoiceJoined {
                channel_id,
                user_id,
            } => self.move_user(*user_id, Some(*channel_id), &mut out),
            Change::VoiceLeft {
                channel_id,
                user_id,
            } => {
                if self.channel_of(*user_id) == Some(*channel_id) {
                    self.move_user(*user_id, None, &mut out);
                }
            }
            Change::Sync { voice_states } => self.sync(voice_states, &mut out),
        }
        out
    }

    fn sync(&mut self, voice_states: &[(u64, u64)], out: &mut Vec<Emitted>) {
        // Last entry wins for a user listed twice.
        let target: HashMap<u64, u64> = voice_states.iter().map(|&(c, u)| (u, c)).collect();
        let mut leaves: Vec<(u64, u64)> = self
            .user_channel
            .iter()
            .filter(|(user, channel)| target.get(user) != Some(channel))
            .map(|(&user, &channel)| (channel, user))
            .collect();
        let mut joins: Vec<(u64, u64)> = target
            .iter()
            .filter(|(user, channel)| self.user_channel.get(user) != Some(channel))
            .map(|(&user, &channel)| (channel, user))
            .collect();
        leaves.sort_unstable();
        joins.sort_unstable();
        for &(channel_id, user_id) in &leaves {
            self.take(user_id);
            out.push(Emitted::VoiceLeft {
                channel_id,
                user_id,
            });
        }
        for &(channel_id, user_id) in &joins {
            self.put(channel_id, user_id);
            out.push(Emitted::VoiceJoined {
                channel_id,
                user_id,
            });
        }
    }

    /// Moves a user to `to` (or out of voice), emitting left-then-joined.
    fn move_user(&mut self, user_id: u64, to: Option<u64>, out: &mut Vec<Emitted>) {
        let from = self.channel_of(user_id);
        if from == to {
            return;
        }
        if let Some(from) = from {
            self.take(user_id);
            out.push(Emitted::VoiceLeft {
                channel_id: from,
                user_id,
            });
        }
        if let Some(to) = to {
            self.put(to, user_id);
            out.push(Emitted::VoiceJoined {
                channel_id: to,
                user_id,
            });
        }
    }

    fn put(&mut self, channel_id: u64, user_id: u64) {
        if let Some(old) = self.user_channel.insert(user_id, channel_id) {
            self.remove_member(old, user_id);
        }
        self.rooms
            .entry(channel_id)
            .or_default()
            .members
            .insert(user_id);
    }

    fn take(&mut self, user_id: u64) {
        if let Some(channel_id) = self.user_channel.remove(&user_id) {
            self.remove_member(channel_id, user_id);
        }
    }

    /// Removes a member; an unregistered channel left empty is forgotten.
    fn remove_member(&mut self, channel_id: u64, user_id: u64) {
        if let Some(room) = self.rooms.get_mut(&channel_id) {
            room.members.remove(&user_id);
            if room.members.is_empty() && !room.registered {
                self.rooms.remove(&channel_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(channel_id: u64, user_id: u64) -> Change {
        Change::VoiceJoined {
            channel_id,
            user_id,
        }
    }
    fn left(channel_id: u64, user_id: u64) -> Change {
        Change::VoiceLeft {
            channel_id,
            user_id,
        }
    }
    fn e_joined(channel_id: u64, user_id: u64) -> Emitted {
        Emitted::VoiceJoined {
            channel_id,
            user_id,
        }
    }
    fn e_left(channel_id: u64, user_id: u64) -> Emitted {
        Emitted::VoiceLeft {
            channel_id,
            user_id,
        }
    }

    #[test]
    fn join_then_duplicate_join_emits_once() {
        let mut p = Presence::new();
        assert_eq!(p.apply(&joined(10, 1)), vec![e_joined(10, 1)]);
        assert_eq!(p.apply(&joined(10, 1)), vec![]);
        assert_eq!(p.members(10), Some(1));
    }

    #[test]
    fn join_elsewhere_is_a_move_left_then_joined() {
        let mut p = Presence::new();
        p.apply(&joined(10, 1));
        assert_eq!(
            p.apply(&joined(20, 1)),
            vec![e_left(10, 1), e_joined(20, 1)]
        );
        assert_eq!(p.members(10), None, "unregistered empty channel forgotten");
        assert_eq!(p.channel_of(1), Some(20));
    }

    #[test]
    fn leave_only_from_the_channel_the_user_is_in() {
        let mut p = Presence::new();
        p.apply(&joined(10, 1));
        assert_eq!(p.apply(&left(20, 1)), vec![], "stale leave ignored");
        assert_eq!(p.apply(&left(10, 1)), vec![e_left(10, 1)]);
        assert_eq!(p.apply(&left(10, 1)), vec![], "duplicate leave ignored");
        assert_eq!(p.channel_of(1), None);
    }

    #[test]
    fn room_created_once_and_kept_when_empty() {
        let mut p = Presence::new();
        let created = Change::RoomCreated {
            channel_id: 10,
            name: Some("table".into()),
        };
        assert_eq!(
            p.apply(&created),
            vec![Emitted::RoomCreated {
                channel_id: 10,
                name: Some("table".into())
            }]
        );
        assert_eq!(p.apply(&created), vec![]);
        p.apply(&joined(10, 1));
        p.apply(&left(10, 1));
        assert_eq!(p.members(10), Some(0), "registered room survives empty");
        assert_eq!(p.rooms().count(), 1);
    }

    #[test]
    fn room_deleted_with_members_emits_only_the_deletion() {
        let mut p = Presence::new();
        p.apply(&joined(10, 1));
        p.apply(&joined(10, 2));
        assert_eq!(
            p.apply(&Change::RoomDeleted { channel_id: 10 }),
            vec![Emitted::RoomDeleted { channel_id: 10 }]
        );
        assert_eq!(p.channel_of(1), None);
        assert_eq!(p.members(10), None);
        assert_eq!(
            p.apply(&Change::RoomDeleted { channel_id: 10 }),
            vec![],
            "unknown channel"
        );
        // The users can join again afterwards.
        assert_eq!(p.apply(&joined(20, 1)), vec![e_joined(20, 1)]);
    }

    #[test]
    fn guild_sync_emits_only_the_differences() {
        let mut p = Presence::new();
        p.apply(&joined(10, 1)); // stays
        p.apply(&joined(10, 2)); // leaves
        p.apply(&joined(20, 3)); // moves to 10
        let sync = Change::Sync {
            voice_states: vec![(10, 1), (10, 3), (30, 4)],
        };
        assert_eq!(
            p.apply(&sync),
            vec![
                e_left(10, 2),
                e_left(20, 3),
                e_joined(10, 3),
                e_joined(30, 4)
            ]
        );
        assert_eq!(
            p.apply(&sync),
            vec![],
            "the same sync again changes nothing"
        );
        assert_eq!(p.members(10), Some(2));
        assert_eq!(p.members(20), None);
    }

    #[test]
    fn guild_sync_keeps_registered_rooms_and_last_duplicate_wins() {
        let mut p = Presence::new();
        p.apply(&Change::RoomCreated {
            channel_id: 10,
            name: None,
        });
        p.apply(&joined(10, 1));
        let sync = Change::Sync {
            voice_states: vec![(20, 2), (30, 2)],
        };
        assert_eq!(p.apply(&sync), vec![e_left(10, 1), e_joined(30, 2)]);
        assert_eq!(p.members(10), Some(0));
        assert_eq!(p.channel_of(2), Some(30));
    }

    #[test]
    fn from_rooms_round_trips() {
        let mut p = Presence::new();
        p.apply(&Change::RoomCreated {
            channel_id: 10,
            name: Some("a".into()),
        });
        p.apply(&joined(10, 1));
        p.apply(&joined(20, 2));
        let copy = Presence::from_rooms(p.rooms().map(|(id, r)| (id, r.clone())));
        assert_eq!(copy, p);
    }

    /// What a client does with the events it receives (contract §3): the client's view must
    /// always equal the hub's state, whatever the order of incoming reports.
    #[derive(Default, PartialEq, Eq, Debug)]
    struct ClientView {
        rooms: BTreeMap<u64, (bool, BTreeSet<u64>)>,
    }

    impl ClientView {
        fn apply(&mut self, e: &Emitted) {
            match e {
                Emitted::RoomCreated { channel_id, .. } => {
                    self.rooms.entry(*channel_id).or_default().0 = true;
                }
                Emitted::RoomDeleted { channel_id } => {
                    self.rooms.remove(channel_id);
                }
                Emitted::VoiceJoined {
                    channel_id,
                    user_id,
                } => {
                    self.rooms
                        .entry(*channel_id)
                        .or_default()
                        .1
                        .insert(*user_id);
                }
                Emitted::VoiceLeft {
                    channel_id,
                    user_id,
                } => {
                    if let Some(room) = self.rooms.get_mut(channel_id) {
                        room.1.remove(user_id);
                        if !room.0 && room.1.is_empty() {
                            self.rooms.remove(channel_id);
                        }
                    }
                }
            }
        }

        fn of(p: &Presence) -> Self {
            Self {
                rooms: p
                    .rooms()
                    .map(|(id, r)| (id, (r.registered, r.members.clone())))
                    .collect(),
            }
        }
    }

    #[test]
    fn a_client_applying_the_emitted_events_always_matches_the_hub() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut p = Presence::new();
            let mut view = ClientView::default();
            for _ in 0..60 {
                let channel_id = rng.u64(1..5);
                let user_id = rng.u64(1..6);
                let change = match rng.u8(0..10) {
                    0 => Change::RoomCreated {
                        channel_id,
                        name: None,
                    },
                    1 => Change::RoomDeleted { channel_id },
                    2 => Change::Sync {
                        voice_states: (0..rng.usize(0..6))
                            .map(|_| (rng.u64(1..5), rng.u64(1..6)))
                            .collect(),
                    },
                    3..=6 => joined(channel_id, user_id),
                    _ => left(channel_id, user_id),
                };
                for e in p.apply(&change) {
                    view.apply(&e);
                }
                assert_eq!(view, ClientView::of(&p), "seed {seed}, after {change:?}");
                // A user is in at most one channel, and the index agrees with the rooms.
                for (id, room) in p.rooms() {
                    for u in &room.members {
                        assert_eq!(p.channel_of(*u), Some(id));
                    }
                }
                // Syncing the current occupancy changes nothing.
                let current: Vec<(u64, u64)> = p
                    .rooms()
                    .flat_map(|(id, r)| r.members.iter().map(move |u| (id, *u)))
                    .collect();
                assert_eq!(
                    p.apply(&Change::Sync {
                        voice_states: current
                    }),
                    vec![]
                );
            }
        }
    }

    #[test]
    fn adopt_registers_silently_once() {
        let mut p = Presence::new();
        assert!(p.adopt(10, Some("t".into())));
        assert!(!p.adopt(10, None));
        assert_eq!(
            p.apply(&Change::RoomCreated {
                channel_id: 10,
                name: None
            }),
            vec![]
        );
        assert_eq!(p.members(10), Some(0));
    }
}
