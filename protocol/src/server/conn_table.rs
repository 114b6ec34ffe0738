//! [`ConnId`] and the hub's registry of open connections.
//!
//! Connections live in a generational slab: a [`ConnId`] is a slot index plus the slot's generation, so a lookup is
//! one array access, and an id of a closed connection never finds the slot's next tenant.

use alloc::vec::Vec;
use core::fmt;

use super::connection::Connection;

/// Names one connection for as long as it is open. Never reused for another connection of the same hub.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(u64);

impl ConnId {
    fn new(index: u32, generation: u32) -> ConnId {
        ConnId((u64::from(index) << 32) | u64::from(generation))
    }

    fn index(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }

    /// The id as a number (for logs and maps in the driver).
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a number came from ([`as_u64`](Self::as_u64)).
    pub const fn from_u64(raw: u64) -> ConnId {
        ConnId(raw)
    }
}

impl fmt::Display for ConnId {
    /// `slot.generation`, e.g. `3.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index(), self.generation())
    }
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

/// The slab of open connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnTable {
    slots: Vec<Slot>,
    /// Empty slots, reused last-freed first.
    free: Vec<u32>,
    len: usize,
}

impl ConnTable {
    /// Stores a connection and names it.
    pub(crate) fn insert(&mut self, conn: Connection) -> ConnId {
        self.len += 1;
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(index as usize)
        {
            slot.conn = Some(conn);
            return ConnId::new(index, slot.generation);
        }
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            conn: Some(conn),
        });
        ConnId::new(index, 0)
    }

    /// Removes a connection; its slot's next tenant gets a new generation.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Connection> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index() as u32);
        self.len -= 1;
        Some(conn)
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Connection> {
        let slot = self.slots.get(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.conn.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.conn.as_mut()
    }

    /// Whether `id` names an open connection.
    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every open connection, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Connection)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.conn
                .as_ref()
                .map(|conn| (ConnId::new(index as u32, slot.generation), conn))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::dialect::ConnDialect;
    use crate::server::{HubConfig, Permissions};
    use crate::time::Timestamp;

    fn conn(name: &str) -> Connection {
        Connection::new(
            alloc::sync::Arc::from(name),
            ConnDialect::Native,
            Permissions::allow_all(),
            &HubConfig::default(),
            Timestamp::ZERO,
        )
    }

    #[test]
    fn ids_are_never_reused() {
        let mut t = ConnTable::default();
        let a = t.insert(conn("a"));
        let b = t.insert(conn("b"));
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.remove(a).map(|c| c.app_id),
            Some(alloc::sync::Arc::from("a"))
        );
        assert!(t.remove(a).is_none(), "removing twice finds nothing");
        let c = t.insert(conn("c"));
        assert_ne!(a, c, "same slot, new generation");
        assert!(
            t.get(a).is_none(),
            "a stale id does not find the new tenant"
        );
        assert_eq!(t.get(c).map(|c| &*c.app_id), Some("c"));
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), [c, b]);
        assert_eq!(alloc::format!("{a} {c}"), "0.0 0.1");
        assert_eq!(ConnId::from_u64(c.as_u64()), c);
        assert!(t.contains(b) && !t.contains(a));
        assert_eq!(t.len(), 2);
    }
}
