//! Delta configs: a [`RoleConfig`] decomposed into keyed items, so a change reaches
//! an agent as the items that changed instead of the whole document.
//!
//! `GET /v1/agent/config?after=REV&delta=1` answers a [`ConfigDelta`]: the items
//! upserted and removed since revision `REV`, or a snapshot of every item
//! (`from = 0`) when the controller no longer knows `REV`. Large material
//! (certificates and keys, zone contents, DKIM keys: any field above
//! [`INLINE_MAX`] bytes of JSON) travels as the BLAKE3 hash of its JSON; the agent
//! fetches a hash it does not hold from [`blob_path`] once.
//!
//! The decomposition is generic over the JSON form of a role config, so a field a
//! later version adds travels as one whole item without a change here:
//!
//! - a keyed list ([`keyed_field`]: web sites by domain, zones by origin, mail
//!   domains, FTP accounts, databases ...) becomes one item per element, id
//!   `field/key` (`field#n/key` for the n-th duplicate key); if its order is not the
//!   order of the keys, an item `field#order` lists the element ids in order;
//! - every other top-level field (the role tag included) is one item, id `field`.
//!
//! [`join`] is the exact inverse of [`split`] (property-tested): an agent that
//! applied every delta rebuilds the very document the controller built, and checks
//! it with [`ConfigDelta::digest`] before using it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::agent_v1::{RoleConfig, ServerIdentity};

/// Largest JSON size in bytes of a field that travels inline; larger ones travel
/// as a blob hash.
pub const INLINE_MAX: usize = 256;
/// Path prefix of the blob call: `GET /v1/agent/blobs/{hash}`.
pub const BLOBS_PATH: &str = "/v1/agent/blobs";

/// Path (under a controller's base URL) of blob `hash` (`GET`, mutual TLS).
pub fn blob_path(hash: &str) -> String {
    format!("{BLOBS_PATH}/{hash}")
}

/// What a delta config cannot be split into, joined from, or applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The role config does not serialize to a JSON object (never for the types here).
    #[error("role config does not serialize to an object: {0}")]
    NotAnObject(String),
    /// An item refers to a blob that is not at hand.
    #[error("item `{id}`: blob {hash} missing")]
    MissingBlob {
        /// The item.
        id: String,
        /// The blob's hash.
        hash: String,
    },
    /// Items or blobs that do not form a role config.
    #[error("item `{id}`: {message}")]
    Malformed {
        /// The item (empty for the whole config).
        id: String,
        /// What is wrong.
        message: String,
    },
}

fn malformed(id: &str, message: impl Into<String>) -> DeltaError {
    DeltaError::Malformed {
        id: id.to_owned(),
        message: message.into(),
    }
}

/// One keyed piece of a role config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `field`, `field/key`, `field#n/key` or `field#order` (see the module docs).
    pub id: String,
    /// The inline part: the value, without the fields moved to `blobs`; `null` when
    /// the whole value is a blob.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
    /// Fields of `value` that travel as blobs: field name → BLAKE3 hex of the
    /// field's JSON; the empty name stands for the whole value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub blobs: BTreeMap<String, String>,
}

impl Item {
    /// Content hash of the item (its JSON, blob hashes included), so a changed
    /// blob changes the item.
    pub fn hash(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).unwrap_or_default();
        *blake3::hash(&json).as_bytes()
    }
}

/// A role config split into items, with the content of every blob they refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// The items by id.
    pub items: BTreeMap<String, Item>,
    /// Blob contents (JSON) by hash.
    pub blobs: BTreeMap<String, Arc<[u8]>>,
}

/// The changes from one revision of a server's config to another, or a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDelta {
    /// [`crate::agent_v1::DesiredConfig::format`] of the document the items form.
    pub format: u32,
    /// The revision the delta starts from; `0`: a snapshot (every item, replacing
    /// whatever the agent holds).
    pub from: i64,
    /// The revision the delta leads to.
    pub to: i64,
    /// Who the server is (small; always whole).
    pub server: ServerIdentity,
    /// Items added or changed (every item in a snapshot).
    #[serde(default)]
    pub upserts: Vec<Item>,
    /// Ids of items removed.
    #[serde(default)]
    pub removals: Vec<String>,
    /// [`digest`] of every item of revision `to`: the agent checks it after
    /// applying and asks for a snapshot when it differs.
    pub digest: String,
}

impl ConfigDelta {
    /// Whether this is a snapshot (every item) rather than a delta.
    pub fn is_snapshot(&self) -> bool {
        self.from == 0
    }
}

/// BLAKE3 hex of blob content.
pub fn blob_hash(bytes: &[u8]) -> String {
    hex(blake3::hash(bytes).as_bytes())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Digest of a whole item set, given each item's id and [`Item::hash`] in id
/// order.
pub fn digest<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    let mut h = blake3::Hasher::new();
    for (id, hash) in items {
        h.update(&(id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
        h.update(hash);
    }
    hex(h.finalize().as_bytes())
}

/// How the elements of a keyed list are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// By a string field of each element object.
    Field(&'static str),
    /// By the first element of each `[key, ...]` tuple.
    First,
    /// By the element itself (a list of strings).
    Itself,
}

impl KeySpec {
    fn key(self, elem: &Value) -> Option<&str> {
        match self {
            KeySpec::Field(f) => elem.get(f)?.as_str(),
            KeySpec::First => elem.get(0)?.as_str(),
            KeySpec::Itself => elem.as_str(),
        }
    }
}

/// The lists of role `role` split per element, and how their elements are keyed.
pub fn keyed_field(role: &str, field: &str) -> Option<KeySpec> {
    Some(match (role, field) {
        ("web", "sites") | ("dns", "zones") | ("mail", "domains") => KeySpec::Field("domain"),
        ("files", "sites") => KeySpec::Itself,
        ("files", "ftp_accounts") => KeySpec::Field("username"),
        ("files", "sync_clients") | ("db", "quotas") => KeySpec::First,
        ("files", "deployments") | ("files", "site_options") => KeySpec::Field("domain"),
        ("files", "restores") => KeySpec::Field("id"),
        ("db", "databases") | ("db", "users") => KeySpec::Field("name"),
        _ => return None,
    })
}

const ORDER_SUFFIX: &str = "#order";

/// Split a role config into items and blobs.
pub fn split(role: &RoleConfig) -> Result<Split, DeltaError> {
    let value = serde_json::to_value(role).map_err(|e| DeltaError::NotAnObject(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(DeltaError::NotAnObject("not an object".into()));
    };
    let tag = role.role();
    let mut out = Split::default();
    for (field, value) in map {
        let spec = keyed_field(tag, &field);
        let keyed = match (&value, spec) {
            (Value::Array(a), Some(spec)) if !a.is_empty() => {
                a.iter().all(|e| spec.key(e).is_some()).then_some(spec)
            }
            _ => None,
        };
        let Some(spec) = keyed else {
            out.add(field, value, false);
            continue;
        };
        let Value::Array(elems) = value else {
            continue;
        };
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut order: Vec<(String, u32, String)> = Vec::with_capacity(elems.len());
        for elem in elems {
            let key = spec.key(&elem).unwrap_or_default().to_owned();
            let n = seen.entry(key.clone()).or_insert(0);
            let id = if *n == 0 {
                format!("{field}/{key}")
            } else {
                format!("{field}#{n}/{key}")
            };
            order.push((key, *n, id.clone()));
            *n += 1;
            out.add(id, elem, true);
        }
        let sorted = order
            .windows(2)
            .all(|w| (&w[0].0, w[0].1) <= (&w[1].0, w[1].1));
        if !sorted {
            let ids = order.into_iter().map(|(_, _, id)| Value::String(id));
            out.add(
                format!("{field}{ORDER_SUFFIX}"),
                Value::Array(ids.collect()),
                false,
            );
        }
    }
    Ok(out)
}

impl Split {
    /// Add an item, moving large material into blobs: the large top-level fields of
    /// an element object, or the whole value otherwise.
    fn add(&mut self, id: String, mut value: Value, element: bool) {
        let mut blobs = BTreeMap::new();
        match &mut value {
            Value::Object(obj) if element => {
                let large: Vec<(String, Vec<u8>)> = obj
                    .iter()
                    .filter_map(|(k, v)| {
                        let json = serde_json::to_vec(v).ok()?;
                        (json.len() > INLINE_MAX).then(|| (k.clone(), json))
                    })
                    .collect();
                for (k, json) in large {
                    obj.remove(&k);
                    blobs.insert(k, self.blob(json));
                }
            }
            _ => {
                let json = serde_json::to_vec(&value).unwrap_or_default();
                if json.len() > INLINE_MAX {
                    blobs.insert(String::new(), self.blob(json));
                    value = Value::Null;
                }
            }
        }
        self.items.insert(id.clone(), Item { id, value, blobs });
    }

    fn blob(&mut self, json: Vec<u8>) -> String {
        let hash = blob_hash(&json);
        self.blobs
            .entry(hash.clone())
            .or_insert_with(|| json.into());
        hash
    }

    /// [`digest`] of the items.
    pub fn digest(&self) -> String {
        let hashes: Vec<(&str, [u8; 32])> = self
            .items
            .iter()
            .map(|(id, item)| (id.as_str(), item.hash()))
            .collect();
        digest(hashes.iter().map(|(id, h)| (*id, h)))
    }
}

/// An item's full value, blobs put back from `blob(hash)`.
pub fn resolve<'a>(
    item: &Item,
    blob: &impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Value, DeltaError> {
    let mut value = item.value.clone();
    for (field, hash) in &item.blobs {
        let bytes = blob(hash).ok_or_else(|| DeltaError::MissingBlob {
            id: item.id.clone(),
            hash: hash.clone(),
        })?;
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| malformed(&item.id, format!("blob {hash}: {e}")))?;
        if field.is_empty() {
            value = v;
        } else {
            value
                .as_object_mut()
                .ok_or_else(|| malformed(&item.id, "blob fields on a value that is no object"))?
                .insert(field.clone(), v);
        }
    }
    Ok(value)
}

/// The role config the items form (the inverse of [`split`]); `blob(hash)` gives
/// the content of each blob the items refer to.
pub fn join<'a, 'b>(
    items: impl IntoIterator<Item = &'b Item>,
    blob: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<RoleConfig, DeltaError> {
    let mut obj = Map::new();
    let mut lists: BTreeMap<String, Vec<(String, u32, String, Value)>> = BTreeMap::new();
    let mut orders: BTreeMap<String, Value> = BTreeMap::new();
    for item in items {
        let value = resolve(item, &blob)?;
        let id = item.id.as_str();
        if let Some((head, key)) = id.split_once('/') {
            let (field, n) = match head.split_once('#') {
                Some((f, n)) => (
                    f,
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| malformed(id, "bad duplicate number"))?,
                ),
                None => (head, 0),
            };
            lists.entry(field.to_owned()).or_default().push((
                key.to_owned(),
                n,
                id.to_owned(),
                value,
            ));
        } else if let Some(field) = id.strip_suffix(ORDER_SUFFIX) {
            orders.insert(field.to_owned(), value);
        } else if obj.insert(id.to_owned(), value).is_some() {
            return Err(malformed(id, "item given twice"));
        }
    }
    for (field, mut elems) in lists {
        if obj.contains_key(&field) {
            return Err(malformed(&field, "both a whole field and keyed elements"));
        }
        let list = match orders.remove(&field) {
            Some(order) => {
                let ids = order
                    .as_array()
                    .ok_or_else(|| malformed(&field, "order is not a list"))?;
                let mut by_id: HashMap<String, Value> =
                    elems.drain(..).map(|(_, _, id, v)| (id, v)).collect();
                let mut list = Vec::with_capacity(ids.len());
                for id in ids {
                    let v = id
                        .as_str()
                        .and_then(|id| by_id.remove(id))
                        .ok_or_else(|| malformed(&field, format!("order names {id}")))?;
                    list.push(v);
                }
                if !by_id.is_empty() {
                    return Err(malformed(&field, "elements missing from the order"));
                }
                list
            }
            None => {
                elems.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                elems.into_iter().map(|(_, _, _, v)| v).collect()
            }
        };
        obj.insert(field, Value::Array(list));
    }
    if let Some(field) = orders.into_keys().next() {
        return Err(malformed(&field, "an order without elements"));
    }
    serde_json::from_value(Value::Object(obj)).map_err(|e| malformed("", e.to_string()))
}

/// The ids upserted and removed from `old` to `new` (each given as id → item hash).
pub fn diff<'a>(
    old: &'a BTreeMap<String, [u8; 32]>,
    new: &'a BTreeMap<String, [u8; 32]>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let upserts = new
        .iter()
        .filter(|(id, h)| old.get(*id) != Some(h))
        .map(|(id, _)| id.as_str())
        .collect();
    let removals = old
        .keys()
        .filter(|id| !new.contains_key(*id))
        .map(String::as_str)
        .collect();
    (upserts, removals)
}

#[path = "agent_delta_changes.rs"]
mod changes;
pub use changes::{apply_changes, patch, split_changes, split_element, SplitChanges};

#[cfg(test)]
#[path = "agent_delta_tests.rs"]
mod tests;
