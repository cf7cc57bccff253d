//! The open connections, oldest first, and the cap on how many there are.
//! Each connection publishes its [`Phase`]; one that has no request in
//! progress can be closed to make room for a new one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for, or reading, a request's headers since this instant.
    Head(Instant),
    /// This many requests in progress (more than one only with h2).
    Busy(usize),
    /// Kept alive with nothing in progress since this instant.
    Idle(Instant),
    /// Handed over to a WebSocket; no longer HTTP's to time out.
    Upgraded,
}

/// What the registry shares with one connection.
pub struct Watched {
    pub phase: watch::Sender<Phase>,
    /// Cancelled when the connection is closed to make room.
    pub evicted: CancellationToken,
}

impl Watched {
    pub fn request_started(&self) {
        self.phase.send_modify(|phase| {
            *phase = match *phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            }
        });
    }

    pub fn request_ended(&self) {
        self.phase.send_modify(|phase| {
            *phase = match *phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                Phase::Busy(_) => Phase::Idle(Instant::now()),
                other => other,
            }
        });
    }

    /// Bytes arrived: an idle connection starts reading its next request
    /// (answers whether it did).
    pub fn bytes_arrived(&self) -> bool {
        self.phase.send_if_modified(|phase| match *phase {
            Phase::Idle(_) => {
                *phase = Phase::Head(Instant::now());
                true
            }
            _ => false,
        })
    }

    fn may_be_closed(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Head(_) | Phase::Idle(_))
    }
}

pub enum Admission {
    Admitted(Slot),
    /// At the cap, and every connection has a request in progress.
    Full,
}

pub struct Registry {
    cap: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By id, which grows with time: the first entry is the oldest.
    connections: BTreeMap<u64, Arc<Watched>>,
}

impl Registry {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            open: Mutex::new(Open::default()),
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // A panic while holding this lock leaves the map consistent (every
        // operation is one insert or remove): keep using it.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Room for a new connection, closing the oldest one with no request
    /// in progress when at the cap.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut open = self.open();
        if open.connections.len() >= self.cap {
            let oldest = open
                .connections
                .iter()
                .find(|(_, watched)| watched.may_be_closed())
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else {
                return Admission::Full;
            };
            if let Some(watched) = open.connections.remove(&oldest) {
                watched.evicted.cancel();
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let watched = Arc::new(Watched {
            phase: watch::channel(Phase::Head(Instant::now())).0,
            evicted: CancellationToken::new(),
        });
        open.connections.insert(id, watched.clone());
        Admission::Admitted(Slot {
            registry: self.clone(),
            id,
            watched,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open().connections.len()
    }
}

/// A connection's place in the registry, given up when dropped (when its
/// socket closes, after any WebSocket on it has ended).
pub struct Slot {
    registry: Arc<Registry>,
    id: u64,
    pub watched: Arc<Watched>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open().connections.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: Admission) -> Slot {
        match admission {
            Admission::Admitted(slot) => slot,
            Admission::Full => panic!("expected room"),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_connection_without_a_request_makes_room() {
        let registry = Arc::new(Registry::new(2));
        let first = admitted(registry.admit());
        let second = admitted(registry.admit());
        first.watched.request_started();
        let third = admitted(registry.admit());
        assert!(!first.watched.evicted.is_cancelled(), "busy: kept");
        assert!(second.watched.evicted.is_cancelled(), "oldest idle: closed");
        assert_eq!(registry.len(), 2);

        third.watched.request_started();
        assert!(matches!(registry.admit(), Admission::Full));
        drop(first);
        assert_eq!(registry.len(), 1, "a closed connection frees its slot");
    }

    #[test]
    fn a_connection_goes_head_busy_idle_and_back_to_head_on_new_bytes() {
        let registry = Arc::new(Registry::new(1));
        let slot = admitted(registry.admit());
        let phase = || *slot.watched.phase.borrow();
        assert!(matches!(phase(), Phase::Head(_)));
        slot.watched.request_started();
        slot.watched.request_started();
        slot.watched.request_ended();
        assert_eq!(phase(), Phase::Busy(1));
        slot.watched.request_ended();
        assert!(matches!(phase(), Phase::Idle(_)));
        assert!(slot.watched.bytes_arrived());
        assert!(matches!(phase(), Phase::Head(_)));
        assert!(!slot.watched.bytes_arrived(), "already reading a head");
    }
}
