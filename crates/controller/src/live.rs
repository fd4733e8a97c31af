//! Live changes of the platform map (issue 18 point 5): every health transition
//! the monitor records ([`crate::health::record`]) and every drain or undrain is
//! published here, in memory, to whoever follows `GET /v1/map/events`
//! ([`crate::api::map`]). Nothing is stored: a follower that falls behind is told
//! to read the map again, and one that connects later reads the map first.

use model::Id;
use scheduler::Health;
use tokio::sync::broadcast;

/// How many changes a slow follower may lag before it is told to resync.
const BACKLOG: usize = 256;

/// One change of the platform map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveEvent {
    /// A server's health changed.
    Health {
        /// The server.
        server: Id,
        /// Previous state.
        from: Health,
        /// New state.
        to: Health,
    },
    /// A server was drained or undrained.
    Drain {
        /// The server.
        server: Id,
        /// Drained now.
        drained: bool,
    },
}

impl LiveEvent {
    /// The server the change is about.
    pub fn server(&self) -> Id {
        match self {
            LiveEvent::Health { server, .. } | LiveEvent::Drain { server, .. } => *server,
        }
    }
}

/// The publisher of [`LiveEvent`]s.
#[derive(Debug)]
pub struct Live {
    tx: broadcast::Sender<LiveEvent>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Live {
    /// Tell every follower (none listening is fine).
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.tx.send(event);
    }

    /// Tell every follower about health transitions.
    pub fn transitions(&self, transitions: &[crate::health::Transition]) {
        for t in transitions {
            self.publish(LiveEvent::Health {
                server: t.server,
                from: t.from,
                to: t.to,
            });
        }
    }

    /// Follow the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_see_changes_published_after_they_subscribed() {
        let live = Live::default();
        live.publish(LiveEvent::Drain {
            server: 1,
            drained: true,
        });
        let mut rx = live.subscribe();
        let e = LiveEvent::Health {
            server: 2,
            from: Health::Up,
            to: Health::Down,
        };
        live.publish(e);
        assert_eq!(rx.recv().await.unwrap(), e);
        assert_eq!(e.server(), 2);
    }
}
