//! How many `single` sites each web server carries, kept in memory for placing new
//! sites: the count of the last config build plus the picks made since. Placing a
//! site used to read every site from the store to count them (O(sites) per
//! request, the bottleneck of bulk site creation at 10,000 sites).
//!
//! The figure is a placement heuristic, not an invariant: a pick made while a build
//! is reading the store may be counted once too few until the next build (at most
//! a second later). Failover passes still count from the store.

use std::collections::HashMap;
use std::sync::Mutex;

use model::Id;

#[derive(Debug, Default)]
struct Inner {
    /// Active `single` sites per server at the last build.
    built: HashMap<Id, u32>,
    /// Picks made since the last build started reading the store.
    picked: HashMap<Id, u32>,
    /// Picks made before that read (possibly in it, possibly not yet committed).
    in_flight: HashMap<Id, u32>,
}

/// Site loads per web server (see the module docs).
#[derive(Debug, Default)]
pub struct SiteLoads {
    inner: Mutex<Inner>,
}

impl SiteLoads {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sites per server now, as best known.
    pub fn loads(&self) -> HashMap<Id, u32> {
        let inner = self.lock();
        let mut out = inner.built.clone();
        for (id, n) in inner.picked.iter().chain(&inner.in_flight) {
            *out.entry(*id).or_default() += n;
        }
        out
    }

    /// A new site was just placed on `server`.
    pub fn picked(&self, server: Id) {
        *self.lock().picked.entry(server).or_default() += 1;
    }

    /// A build is about to read the store: picks so far are in flight.
    pub fn build_started(&self) {
        let mut inner = self.lock();
        let picked = std::mem::take(&mut inner.picked);
        for (id, n) in picked {
            *inner.in_flight.entry(id).or_default() += n;
        }
    }

    /// The build read the store: the active sites per server it counted
    /// ([`crate::builder::World::active_sites`]) replace what was in flight.
    pub fn build_read(&self, built: HashMap<Id, u32>) {
        let mut inner = self.lock();
        inner.built = built;
        inner.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_count_until_a_build_has_read_them() {
        let loads = SiteLoads::default();
        loads.picked(1);
        loads.picked(1);
        assert_eq!(loads.loads().get(&1), Some(&2));
        loads.build_started();
        loads.picked(2); // during the read: kept after it
        assert_eq!(loads.loads().get(&1), Some(&2));
        loads.build_read(HashMap::new());
        assert_eq!(loads.loads().get(&1), None);
        assert_eq!(loads.loads().get(&2), Some(&1));
    }
}
