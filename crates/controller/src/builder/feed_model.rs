//! A test model of the store's change feed, shared by the property tests that
//! compare incremental state with a full rebuild (the builder's and the key
//! task's): objects by id, what was touched since the last feed, and tombstones
//! for deletions, cascading like the store's `ON DELETE CASCADE`.

use std::collections::{BTreeMap, BTreeSet};

use model::entity::{Kind, Object};
use model::Id;
use store::{Feed, RawObject, Stored, Tombstone};

/// The store as a property test sees it: every object as the feed would carry it.
#[derive(Default)]
pub(crate) struct FeedModel {
    pub(crate) objects: BTreeMap<Id, RawObject>,
    revision: i64,
    /// Objects touched since the last feed.
    touched: BTreeSet<Id>,
    /// Kinds of deleted objects (tombstones name them).
    kinds: BTreeMap<Id, Kind>,
}

impl FeedModel {
    /// Create or update `obj`, stamped with the next revision.
    pub(crate) fn put<T: Object + serde::Serialize>(&mut self, mut obj: Stored<T>) {
        obj.meta.updated_rev = self.revision + 1;
        let id = obj.meta.id;
        self.kinds.insert(id, T::KIND);
        self.touched.insert(id);
        self.objects.insert(
            id,
            RawObject {
                kind: T::KIND,
                meta: obj.meta,
                data: serde_json::to_string(&obj.data).expect("json"),
            },
        );
    }

    /// Delete `id` and everything below it (ON DELETE CASCADE).
    pub(crate) fn delete(&mut self, id: Id) {
        if self.objects.remove(&id).is_none() {
            return;
        }
        self.touched.insert(id);
        let children: Vec<Id> = self
            .objects
            .values()
            .filter(|o| o.meta.parent == Some(id))
            .map(|o| o.meta.id)
            .collect();
        for c in children {
            self.delete(c);
        }
    }

    pub(crate) fn has(&self, id: Id) -> bool {
        self.objects.contains_key(&id)
    }

    /// The feed of what was touched since the last one.
    pub(crate) fn feed(&mut self) -> Feed {
        self.revision += 1;
        let mut feed = Feed {
            revision: self.revision,
            ..Feed::default()
        };
        for id in std::mem::take(&mut self.touched) {
            match self.objects.get(&id) {
                Some(o) => feed.changed.push(o.clone()),
                None => feed.deleted.push(Tombstone {
                    kind: self.kinds[&id],
                    id,
                    rev: self.revision,
                }),
            }
        }
        feed
    }

    /// Everything, as a feed from revision 0.
    pub(crate) fn everything(&self) -> Feed {
        Feed {
            revision: self.revision,
            changed: self.objects.values().cloned().collect(),
            deleted: Vec::new(),
        }
    }
}
