//! The offline queue: requests issued while no connection is open wait here, in issue order, within a bound on
//! count and bytes (PROTOCOL §4: "re-send requests that were queued while offline").

use alloc::collections::VecDeque;
use alloc::string::String;

use crate::wire::MessageId;

/// A request waiting for a connection: its id and its encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) id: MessageId,
    pub(crate) frame: String,
}

/// The bounded queue. Its bytes are the sum of the queued frames' lengths.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    queue: VecDeque<Queued>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

/// [`Outbox::push`] found no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl Outbox {
    /// An empty queue with these bounds.
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            bytes: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Queues a frame at the back, unless that would go over either bound.
    pub(crate) fn push(&mut self, id: MessageId, frame: String) -> Result<(), QueueFull> {
        let bytes = self.bytes.saturating_add(frame.len());
        if self.queue.len() >= self.max_messages || bytes > self.max_bytes {
            return Err(QueueFull);
        }
        self.bytes = bytes;
        self.queue.push_back(Queued { id, frame });
        Ok(())
    }

    /// Takes the request `id` out of the queue (it timed out while waiting). Returns whether it was there.
    pub(crate) fn remove(&mut self, id: &MessageId) -> bool {
        match self.queue.iter().position(|q| &q.id == id) {
            Some(index) => {
                if let Some(q) = self.queue.remove(index) {
                    self.bytes -= q.frame.len();
                }
                true
            }
            None => false,
        }
    }

    /// The next request to send, front first.
    pub(crate) fn pop(&mut self) -> Option<Queued> {
        let q = self.queue.pop_front()?;
        self.bytes -= q.frame.len();
        Some(q)
    }

    /// How many requests wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The bytes of the frames that wait.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn id(n: u32) -> MessageId {
        MessageId::new(n.to_string()).unwrap()
    }

    #[test]
    fn keeps_issue_order_and_counts_bytes() {
        let mut o = Outbox::new(10, 100);
        for n in 0..3 {
            o.push(id(n), "x".repeat(10)).unwrap();
        }
        assert_eq!((o.len(), o.bytes()), (3, 30));
        assert!(o.remove(&id(1)));
        assert!(!o.remove(&id(1)));
        assert_eq!((o.len(), o.bytes()), (2, 20));
        let order: Vec<MessageId> = core::iter::from_fn(|| o.pop()).map(|q| q.id).collect();
        assert_eq!(order, [id(0), id(2)]);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn refuses_past_either_bound() {
        let mut o = Outbox::new(2, 25);
        o.push(id(0), "x".repeat(10)).unwrap();
        // 10 + 16 bytes is over 25.
        assert_eq!(o.push(id(1), "x".repeat(16)), Err(QueueFull));
        o.push(id(1), "x".repeat(15)).unwrap();
        // Exactly at the byte bound, but over the count bound.
        assert_eq!(o.push(id(2), String::new()), Err(QueueFull));
        assert_eq!((o.len(), o.bytes()), (2, 25));
        o.pop();
        o.push(id(2), "x".repeat(10)).unwrap();
        assert_eq!((o.len(), o.bytes()), (2, 25));
    }
}
