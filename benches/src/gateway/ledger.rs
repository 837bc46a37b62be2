//! What a phase dispatched and what each client received, and how the two are matched
//! (pure bookkeeping: no clocks are read here, instants are passed in).
//!
//! A phase alternates join/leave over a pool of users, so every control call (or post)
//! produces exactly one client event: event `i` is `voice.joined` (even `i`) or `voice.left`
//! (odd `i`) of user `base + (i / 2) % pool`. A receipt is matched to the oldest unmatched
//! dispatch with the same type and user (FIFO) that was dispatched no later than the receipt;
//! a receipt with no such dispatch is a duplicate, a dispatch no receipt matched is lost.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// The two client events a phase produces (contract §3 event table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `voice.joined`.
    Joined,
    /// `voice.left`.
    Left,
}

impl Kind {
    /// The event name on the wire.
    pub fn event(self) -> &'static str {
        match self {
            Self::Joined => "voice.joined",
            Self::Left => "voice.left",
        }
    }
}

/// One event as the matching sees it: its type and its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Joined or left.
    pub kind: Kind,
    /// The user's snowflake.
    pub user: u64,
}

/// Event `i` of a phase whose users are `base..base + pool`.
///
/// ```
/// use benches::gateway::ledger::{Key, Kind, planned};
/// assert_eq!(planned(0, 100, 2), Key { kind: Kind::Joined, user: 100 });
/// assert_eq!(planned(1, 100, 2), Key { kind: Kind::Left, user: 100 });
/// assert_eq!(planned(4, 100, 2), Key { kind: Kind::Joined, user: 100 });
/// ```
pub fn planned(i: u64, base: u64, pool: u64) -> Key {
    let kind = if i % 2 == 0 { Kind::Joined } else { Kind::Left };
    Key {
        kind,
        user: base + (i / 2) % pool.max(1),
    }
}

/// Parses a hub frame (contract §3 item 4) into a [`Key`] when it is a `voice.joined` or
/// `voice.left` event with a numeric `payload.userId`; anything else is `None`.
pub fn voice_key(text: &str) -> Option<Key> {
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(rename = "type")]
        kind: String,
        event: Option<String>,
        payload: Option<Payload>,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "userId")]
        user_id: Option<String>,
    }
    let f: Frame = serde_json::from_str(text).ok()?;
    if f.kind != "event" {
        return None;
    }
    let kind = match f.event.as_deref()? {
        "voice.joined" => Kind::Joined,
        "voice.left" => Kind::Left,
        _ => return None,
    };
    let user = f.payload?.user_id?.parse().ok()?;
    Some(Key { kind, user })
}

/// One frame a client received, with the instant it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// What it was.
    pub key: Key,
    /// When it was read off the socket.
    pub at: Instant,
}

/// How one client's receipts matched one phase's dispatches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matched {
    /// Receipt minus dispatch of every matched delivery, microseconds.
    pub latencies_us: Vec<u64>,
    /// Dispatches no receipt matched.
    pub lost: u64,
    /// Receipts of this phase's users that matched no dispatch.
    pub duplicates: u64,
}

impl Matched {
    /// Adds another client's result.
    pub fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        self.lost += other.lost;
        self.duplicates += other.duplicates;
    }
}

/// Matches one client's `receipts` (in the order read) against a phase's `dispatched`
/// events (in dispatch order). Receipts of users outside `users` belong to another phase
/// and are skipped; receipts read after `until` (the end of the phase's drain) are too, so
/// what they would have matched counts as lost.
pub fn match_client(
    dispatched: &[(Key, Instant)],
    receipts: &[Receipt],
    users: std::ops::Range<u64>,
    until: Instant,
) -> Matched {
    let mut pending: HashMap<Key, VecDeque<Instant>> = HashMap::new();
    for (key, at) in dispatched {
        pending.entry(*key).or_default().push_back(*at);
    }
    let mut out = Matched::default();
    let mine = |r: &&Receipt| users.contains(&r.key.user) && r.at <= until;
    for r in receipts.iter().filter(mine) {
        let queue = pending.get_mut(&r.key);
        match queue.and_then(|q| q.front().copied().filter(|d| *d <= r.at).map(|d| (q, d))) {
            Some((q, d)) => {
                q.pop_front();
                let us = r.at.duration_since(d).as_micros();
                out.latencies_us.push(u64::try_from(us).unwrap_or(u64::MAX));
            }
            None => out.duplicates += 1,
        }
    }
    out.lost = pending.values().map(|q| q.len() as u64).sum();
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn plan_alternates_and_reuses_the_pool() {
        let keys: Vec<Key> = (0..6).map(|i| planned(i, 10, 2)).collect();
        let users: Vec<u64> = keys.iter().map(|k| k.user).collect();
        assert_eq!(users, [10, 10, 11, 11, 10, 10]);
        assert!(
            keys.iter()
                .enumerate()
                .all(|(i, k)| (k.kind == Kind::Joined) == (i % 2 == 0))
        );
        assert_eq!(planned(3, 7, 0).user, 7, "a zero pool acts as one user");
    }

    #[test]
    fn frames_are_parsed_by_type_and_user() {
        let joined = r#"{"v":1,"type":"event","event":"voice.joined","payload":{"guildId":"1","channelId":"2","userId":"42"},"ts":1,"seq":3}"#;
        assert_eq!(
            voice_key(joined),
            Some(Key {
                kind: Kind::Joined,
                user: 42
            })
        );
        let left = joined.replace("voice.joined", "voice.left");
        assert_eq!(voice_key(&left).map(|k| k.kind), Some(Kind::Left));
        for other in [
            r#"{"v":1,"type":"ack","event":"auth.ok","guildId":"1","seq":0,"resumed":false}"#,
            r#"{"v":1,"type":"event","event":"room.created","payload":{"guildId":"1","channelId":"2","name":"x"},"seq":4}"#,
            r#"{"v":1,"type":"event","event":"voice.left","payload":{"userId":"abc"}}"#,
            "not json",
        ] {
            assert_eq!(voice_key(other), None, "{other}");
        }
    }

    #[test]
    fn fifo_match_gives_latency_loss_and_duplicates() {
        let t = Instant::now();
        let a = Key {
            kind: Kind::Joined,
            user: 5,
        };
        let b = Key {
            kind: Kind::Left,
            user: 5,
        };
        let dispatched = [(a, ms(t, 0)), (b, ms(t, 2)), (a, ms(t, 10)), (b, ms(t, 12))];
        let receipts = [
            Receipt {
                key: a,
                at: ms(t, 1),
            },
            Receipt {
                key: a,
                at: ms(t, 3),
            }, // a duplicate: the 2nd join is not sent yet
            Receipt {
                key: b,
                at: ms(t, 5),
            },
            Receipt {
                key: a,
                at: ms(t, 14),
            },
            Receipt {
                // another phase's user: ignored
                key: Key {
                    kind: Kind::Joined,
                    user: 99,
                },
                at: ms(t, 15),
            },
        ];
        let m = match_client(&dispatched, &receipts, 0..10, ms(t, 100));
        assert_eq!(m.latencies_us, [1000, 3000, 4000]);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.lost, 1);
        // A receipt after the drain deadline does not count: its dispatch is lost.
        let m = match_client(&dispatched, &receipts, 0..10, ms(t, 10));
        assert_eq!(m.latencies_us, [1000, 3000]);
        assert_eq!((m.duplicates, m.lost), (1, 2));
    }

    #[test]
    fn merge_adds_up() {
        let mut total = Matched {
            latencies_us: vec![1],
            lost: 1,
            duplicates: 0,
        };
        total.merge(Matched {
            latencies_us: vec![2, 3],
            lost: 0,
            duplicates: 2,
        });
        assert_eq!(
            total,
            Matched {
                latencies_us: vec![1, 2, 3],
                lost: 1,
                duplicates: 2
            }
        );
    }
}
