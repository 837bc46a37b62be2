//! The set of subscribed clients and their bounded outgoing queues.
//!
//! Publishing pushes the shared frame ([`Bytes`], encoded once) into every client's queue and
//! never waits on a client. Each queue is bounded by the bytes it holds
//! (`CLIENT_QUEUE_MAX_BYTES`): a push that would go over it empties the queue and marks the
//! client for eviction with close code 1013 "try again later" (contract §3.6); the client's
//! writer sends the close frame and the client resumes with `since`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

/// WebSocket close code for a client whose queue overflowed (RFC 6455 §7.4.1, 1013 "Try
/// Again Later", IANA registry).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// WebSocket close code for a hub going away (shutdown), RFC 6455 §7.4.1.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Why a queue was closed: the close frame its writer must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseOrder {
    /// The close code.
    pub code: u16,
    /// A short reason (ASCII, well under the 123-byte limit of a close reason).
    pub reason: &'static str,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; the writer was woken.
    Queued,
    /// The queue went over its bound: the client is now closed with 1013.
    Evicted,
    /// The queue was already closed; the frame was dropped.
    Closed,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    bytes: usize,
    close: Option<CloseOrder>,
}

/// One client's outgoing queue: frames waiting for its writer, bounded by bytes.
#[derive(Debug, Default)]
pub struct ClientQueue {
    state: Mutex<QueueState>,
    wake: Notify,
}

impl ClientQueue {
    /// An empty, open queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the queue inconsistent in a way that
        // matters (worst case: a wrong byte count), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame unless that takes the queue over `max_bytes`, which evicts the client.
    pub fn push(&self, frame: &Bytes, max_bytes: usize) -> Pushed {
        let mut state = self.lock();
        if state.close.is_some() {
            return Pushed::Closed;
        }
        // An empty queue always takes one frame (a frame larger than the bound alone is
        // not the client's fault); after that, going over the bound evicts.
        if state.bytes > 0 && state.bytes.saturating_add(frame.len()) > max_bytes {
            state.frames = VecDeque::new();
            state.bytes = 0;
            state.close = Some(CloseOrder {
                code: CLOSE_TRY_AGAIN_LATER,
                reason: "client too slow",
            });
            drop(state);
            self.wake.notify_one();
            return Pushed::Evicted;
        }
        state.bytes += frame.len();
        state.frames.push_back(frame.clone());
        drop(state);
        self.wake.notify_one();
        Pushed::Queued
    }

    /// Closes the queue (the first close wins) and drops what it holds.
    pub fn close(&self, order: CloseOrder) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some(order);
            state.frames = VecDeque::new();
            state.bytes = 0;
        }
        drop(state);
        self.wake.notify_one();
    }

    /// The close order, once the queue is closed.
    pub fn close_order(&self) -> Option<CloseOrder> {
        self.lock().close
    }

    /// Takes the next frame to write.
    pub fn pop(&self) -> Option<Bytes> {
        let mut state = self.lock();
        let frame = state.frames.pop_front()?;
        state.bytes -= frame.len();
        if state.frames.is_empty() && state.frames.capacity() > 16 {
            // Give back what a burst grew (idle connections stay small).
            state.frames = VecDeque::new();
        }
        Some(frame)
    }

    /// Whether frames are waiting.
    pub fn has_frames(&self) -> bool {
        !self.lock().frames.is_empty()
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Waits until something was pushed or the queue was closed since the last wake-up.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// The clients subscribed to one guild stream.
#[derive(Debug, Default)]
pub struct Fanout {
    clients: HashMap<u64, Arc<ClientQueue>>,
    next_id: u64,
}

/// The outcome of one publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Queues the frame went into.
    pub queued: u64,
    /// Clients evicted by this frame.
    pub evicted: u64,
}

impl Fanout {
    /// No clients.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client; returns its id for [`Fanout::unsubscribe`].
    pub fn subscribe(&mut self, queue: Arc<ClientQueue>) -> u64 {
        self.next_id += 1;
        self.clients.insert(self.next_id, queue);
        self.next_id
    }

    /// Removes a client.
    pub fn unsubscribe(&mut self, id: u64) {
        self.clients.remove(&id);
    }

    /// Number of subscribed clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is subscribed.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Pushes a frame to every client without waiting on any; evicted and closed clients
    /// are removed from the set.
    pub fn publish(&mut self, frame: &Bytes, max_bytes: usize) -> Delivery {
        let mut delivery = Delivery::default();
        self.clients
            .retain(|_, queue| match queue.push(frame, max_bytes) {
                Pushed::Queued => {
                    delivery.queued += 1;
                    true
                }
                Pushed::Evicted => {
                    delivery.evicted += 1;
                    false
                }
                Pushed::Closed => false,
            });
        delivery
    }

    /// Closes every client with `order` and empties the set.
    pub fn close_all(&mut self, order: CloseOrder) {
        for (_, queue) in self.clients.drain() {
            queue.close(order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_client_is_evicted_while_others_get_everything() {
        let mut fanout = Fanout::new();
        let slow = Arc::new(ClientQueue::new());
        let fast = Arc::new(ClientQueue::new());
        fanout.subscribe(slow.clone());
        fanout.subscribe(fast.clone());
        let frame = Bytes::from_static(&[b'x'; 100]);
        let mut received = 0;
        for i in 0..50 {
            let d = fanout.publish(&frame, 1_000);
            // The fast client's writer keeps up.
            while fast.pop().is_some() {
                received += 1;
            }
            if i < 10 {
                assert_eq!(
                    d,
                    Delivery {
                        queued: 2,
                        evicted: 0
                    }
                );
            } else if i == 10 {
                assert_eq!(
                    d,
                    Delivery {
                        queued: 1,
                        evicted: 1
                    }
                );
            }
        }
        assert_eq!(received, 50);
        assert_eq!(fanout.len(), 1);
        assert_eq!(
            slow.close_order().map(|o| o.code),
            Some(CLOSE_TRY_AGAIN_LATER)
        );
        assert_eq!(slow.queued_bytes(), 0, "evicted queue frees its frames");
        assert_eq!(slow.pop(), None);
    }

    #[test]
    fn an_empty_queue_takes_one_oversized_frame() {
        let q = ClientQueue::new();
        let big = Bytes::from_static(&[b'x'; 50]);
        assert_eq!(q.push(&big, 10), Pushed::Queued);
        assert_eq!(q.push(&big, 10), Pushed::Evicted);
    }

    #[test]
    fn close_all_orders_going_away() {
        let mut fanout = Fanout::new();
        let q = Arc::new(ClientQueue::new());
        fanout.subscribe(q.clone());
        fanout.close_all(CloseOrder {
            code: CLOSE_GOING_AWAY,
            reason: "shutdown",
        });
        assert!(fanout.is_empty());
        assert_eq!(q.close_order().map(|o| o.code), Some(CLOSE_GOING_AWAY));
        assert_eq!(q.push(&Bytes::from_static(b"x"), 10), Pushed::Closed);
    }

    #[tokio::test]
    async fn push_wakes_the_writer() {
        let q = Arc::new(ClientQueue::new());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.changed().await });
        q.push(&Bytes::from_static(b"x"), 10);
        assert!(waiter.await.is_ok());
        assert_eq!(q.pop(), Some(Bytes::from_static(b"x")));
    }
}
