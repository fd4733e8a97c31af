//! Splitting only what changed: [`split_changes`] compares two versions of a role
//! config element by element, typed (`PartialEq`, no serialization of an element
//! that did not change), and splits only the items that differ. The result is
//! exactly what [`split`] of both versions and a comparison of their items would
//! give (property-tested), at a cost proportional to the change plus one
//! comparison per element, instead of serializing and hashing every element of a
//! server's config on every change.
//!
//! The keyed lists are named here by type (the [`Keyed`] impls) and by the
//! exhaustive destructuring in [`visit`] and [`rest`]: a field added to a role
//! config does not compile until it is placed in one of them; a test checks that
//! the lists visited are the ones [`keyed_field`] names.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::{split, DeltaError, Item, Split, ORDER_SUFFIX};
use crate::agent_v1::{
    DbConfig, DbRoleConfig, DbUserConfig, DnsConfig, FileRestore, FilesConfig, FilesSiteOptions,
    FtpAccountConfig, MailConfig, MailDomain, RoleConfig, SiteDeployment, WebConfig, WebSite,
    ZoneAssignment,
};

/// The items that changed from one role config to another.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitChanges {
    /// Items added or changed, with the blobs they refer to.
    pub upserts: Split,
    /// Ids of items removed.
    pub removals: Vec<String>,
}

impl SplitChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserts.items.is_empty() && self.removals.is_empty()
    }
}

/// An element of a keyed list: its key as [`keyed_field`]'s [`super::KeySpec`]
/// reads it from the element's JSON.
trait Keyed: PartialEq + Sized {
    fn key(&self) -> &str;
    /// The element's JSON.
    fn to_json(&self) -> serde_json::Result<Value>;
    /// An element from its JSON.
    fn from_json(v: Value) -> serde_json::Result<Self>;
}

macro_rules! keyed_by_field {
    ($($t:ty => $f:ident),* $(,)?) => {
        $(impl Keyed for $t {
            fn key(&self) -> &str {
                &self.$f
            }
            fn to_json(&self) -> serde_json::Result<Value> {
                serde_json::to_value(self)
            }
            fn from_json(v: Value) -> serde_json::Result<Self> {
                serde_json::from_value(v)
            }
        })*
    };
}

keyed_by_field!(
    ZoneAssignment => domain,
    MailDomain => domain,
    FtpAccountConfig => username,
    SiteDeployment => domain,
    FilesSiteOptions => domain,
    FileRestore => id,
    DbConfig => name,
    DbUserConfig => name,
);

/// Web sites are held shared ([`WebConfig::sites`]); equal `Arc`s compare by
/// pointer first (`WebSite: Eq`), so unchanged shared entries cost no field walk.
impl Keyed for std::sync::Arc<WebSite> {
    fn key(&self) -> &str {
        &self.domain
    }
    fn to_json(&self) -> serde_json::Result<Value> {
        serde_json::to_value(&**self)
    }
    fn from_json(v: Value) -> serde_json::Result<Self> {
        serde_json::from_value::<WebSite>(v).map(std::sync::Arc::new)
    }
}

impl Keyed for String {
    fn key(&self) -> &str {
        self
    }
    fn to_json(&self) -> serde_json::Result<Value> {
        Ok(Value::String(self.clone()))
    }
    fn from_json(v: Value) -> serde_json::Result<Self> {
        serde_json::from_value(v)
    }
}

impl<T: PartialEq + Serialize + serde::de::DeserializeOwned> Keyed for (String, T) {
    fn key(&self) -> &str {
        &self.0
    }
    fn to_json(&self) -> serde_json::Result<Value> {
        serde_json::to_value(self)
    }
    fn from_json(v: Value) -> serde_json::Result<Self> {
        serde_json::from_value(v)
    }
}

/// The items that changed from `old` to `new`. Equal elements of keyed lists are
/// compared, never serialized; the small rest of the config (every field that is
/// not a keyed list) is split whole on both sides. Configs of different roles are
/// split whole.
pub fn split_changes(old: &RoleConfig, new: &RoleConfig) -> Result<SplitChanges, DeltaError> {
    let mut v = Recorder {
        fields: Vec::new(),
        out: SplitChanges::default(),
        failed: None,
        diff: true,
    };
    if !visit(old, new, &mut v) {
        return whole_changes(old, new);
    }
    let Recorder {
        fields,
        mut out,
        failed,
        ..
    } = v;
    if let Some(e) = failed {
        return Err(e);
    }
    // The rest: every field but the keyed lists, whose `field` item exists only
    // while the list is empty (split makes a non-empty keyed list element items).
    let (mut ro, mut rn) = (split(&rest(old))?, split(&rest(new))?);
    for (field, old_full, new_full) in &fields {
        if *old_full {
            ro.items.remove(*field);
        }
        if *new_full {
            rn.items.remove(*field);
        }
    }
    for (id, item) in rn.items {
        if ro.items.get(&id) != Some(&item) {
            for hash in item.blobs.values() {
                if let Some(b) = rn.blobs.get(hash) {
                    out.upserts.blobs.insert(hash.clone(), b.clone());
                }
            }
            out.upserts.items.insert(id, item);
        } else {
            ro.items.remove(&id);
        }
    }
    // What is left of the old rest is either changed (upserted) or gone.
    out.removals.extend(
        ro.items
            .into_keys()
            .filter(|id| !out.upserts.items.contains_key(id)),
    );
    out.removals.sort();
    Ok(out)
}

/// Both configs split whole, items compared.
fn whole_changes(old: &RoleConfig, new: &RoleConfig) -> Result<SplitChanges, DeltaError> {
    let (so, mut sn) = (split(old)?, split(new)?);
    let removals = so
        .items
        .keys()
        .filter(|id| !sn.items.contains_key(*id))
        .cloned()
        .collect();
    sn.items.retain(|id, item| so.items.get(id) != Some(item));
    let keep: std::collections::BTreeSet<String> = sn
        .items
        .values()
        .flat_map(|i| i.blobs.values().cloned())
        .collect();
    sn.blobs.retain(|h, _| keep.contains(h));
    Ok(SplitChanges {
        upserts: sn,
        removals,
    })
}

/// Visits the keyed lists: records each field with whether its old and new
/// lists are non-empty, and (with `diff`) adds their changed elements to `out`.
struct Recorder {
    fields: Vec<(&'static str, bool, bool)>,
    out: SplitChanges,
    failed: Option<DeltaError>,
    diff: bool,
}

impl Recorder {
    fn list<T: Keyed>(&mut self, field: &'static str, old: &[T], new: &[T]) {
        self.fields.push((field, !old.is_empty(), !new.is_empty()));
        if self.diff && self.failed.is_none() {
            if let Err(e) = list_changes(field, old, new, &mut self.out) {
                self.failed = Some(e);
            }
        }
    }
}

/// Visit every keyed list of two configs of the same role (`false` otherwise).
/// Exhaustive patterns: a new field must be placed here (or in [`rest`]).
fn visit(old: &RoleConfig, new: &RoleConfig, v: &mut Recorder) -> bool {
    match (old, new) {
        (
            RoleConfig::Web(WebConfig {
                sites: os,
                files_origin: _,
                peers: _,
                acme_challenges: _,
            }),
            RoleConfig::Web(WebConfig {
                sites: ns,
                files_origin: _,
                peers: _,
                acme_challenges: _,
            }),
        ) => v.list("sites", os, ns),
        (RoleConfig::Dns(DnsConfig { zones: os }), RoleConfig::Dns(DnsConfig { zones: ns })) => {
            v.list("zones", os, ns);
        }
        (
            RoleConfig::Mail(MailConfig {
                domains: os,
                flush: _,
                tls: _,
                peers: _,
                writer: _,
            }),
            RoleConfig::Mail(MailConfig { domains: ns, .. }),
        ) => v.list("domains", os, ns),
        (
            RoleConfig::Files(FilesConfig {
                sites: o_sites,
                ftp_accounts: o_ftp,
                tls: _,
                sync_clients: o_sync,
                deployments: o_dep,
                site_options: o_opt,
                restores: o_res,
                versions_days: _,
            }),
            RoleConfig::Files(FilesConfig {
                sites: n_sites,
                ftp_accounts: n_ftp,
                tls: _,
                sync_clients: n_sync,
                deployments: n_dep,
                site_options: n_opt,
                restores: n_res,
                versions_days: _,
            }),
        ) => {
            v.list("sites", o_sites, n_sites);
            v.list("ftp_accounts", o_ftp, n_ftp);
            v.list("sync_clients", o_sync, n_sync);
            v.list("deployments", o_dep, n_dep);
            v.list("site_options", o_opt, n_opt);
            v.list("restores", o_res, n_res);
        }
        (
            RoleConfig::Db(DbRoleConfig {
                databases: o_db,
                users: o_users,
                quotas: o_quotas,
                trash_days: _,
            }),
            RoleConfig::Db(DbRoleConfig {
                databases: n_db,
                users: n_users,
                quotas: n_quotas,
                trash_days: _,
            }),
        ) => {
            v.list("databases", o_db, n_db);
            v.list("users", o_users, n_users);
            v.list("quotas", o_quotas, n_quotas);
        }
        _ => return false,
    }
    true
}

/// The config without its keyed lists (each left empty).
fn rest(role: &RoleConfig) -> RoleConfig {
    match role {
        RoleConfig::Web(WebConfig {
            sites: _,
            files_origin,
            peers,
            acme_challenges,
        }) => RoleConfig::Web(WebConfig {
            sites: Vec::new(),
            files_origin: files_origin.clone(),
            peers: peers.clone(),
            acme_challenges: acme_challenges.clone(),
        }),
        RoleConfig::Dns(DnsConfig { zones: _ }) => RoleConfig::Dns(DnsConfig { zones: Vec::new() }),
        RoleConfig::Mail(MailConfig {
            domains: _,
            flush,
            tls,
            peers,
            writer,
        }) => RoleConfig::Mail(MailConfig {
            domains: Vec::new(),
            flush: *flush,
            tls: tls.clone(),
            peers: peers.clone(),
            writer: writer.clone(),
        }),
        RoleConfig::Files(FilesConfig {
            sites: _,
            ftp_accounts: _,
            tls,
            sync_clients: _,
            deployments: _,
            site_options: _,
            restores: _,
            versions_days,
        }) => RoleConfig::Files(FilesConfig {
            sites: Vec::new(),
            ftp_accounts: Vec::new(),
            tls: tls.clone(),
            sync_clients: Vec::new(),
            deployments: Vec::new(),
            site_options: Vec::new(),
            restores: Vec::new(),
            versions_days: *versions_days,
        }),
        RoleConfig::Db(DbRoleConfig {
            databases: _,
            users: _,
            quotas: _,
            trash_days,
        }) => RoleConfig::Db(DbRoleConfig {
            databases: Vec::new(),
            users: Vec::new(),
            quotas: Vec::new(),
            trash_days: *trash_days,
        }),
    }
}

/// Each element's duplicate number (the n-th element with its key, from 0) and
/// whether the list is in key order (then duplicates are neighbours).
fn numbered<T: Keyed>(list: &[T]) -> (Vec<u32>, bool) {
    let sorted = list.windows(2).all(|w| w[0].key() <= w[1].key());
    let mut ns: Vec<u32> = Vec::with_capacity(list.len());
    if sorted {
        for (i, e) in list.iter().enumerate() {
            let n = match i.checked_sub(1) {
                Some(p) if list[p].key() == e.key() => ns[p] + 1,
                _ => 0,
            };
            ns.push(n);
        }
    } else {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for e in list {
            let c = seen.entry(e.key()).or_insert(0);
            ns.push(*c);
            *c += 1;
        }
    }
    (ns, sorted)
}

fn element_id(field: &str, key: &str, n: u32) -> String {
    if n == 0 {
        format!("{field}/{key}")
    } else {
        format!("{field}#{n}/{key}")
    }
}

/// The changed elements (and order item) of one keyed list.
fn list_changes<T: Keyed>(
    field: &str,
    old: &[T],
    new: &[T],
    out: &mut SplitChanges,
) -> Result<(), DeltaError> {
    let (on, o_sorted) = numbered(old);
    let (nn, n_sorted) = numbered(new);
    let upsert = |out: &mut SplitChanges, j: usize| -> Result<(), DeltaError> {
        let e = &new[j];
        let value = e
            .to_json()
            .map_err(|e| DeltaError::NotAnObject(e.to_string()))?;
        out.upserts
            .add(element_id(field, e.key(), nn[j]), value, true);
        Ok(())
    };
    let removal = |out: &mut SplitChanges, i: usize| {
        out.removals.push(element_id(field, old[i].key(), on[i]));
    };
    if o_sorted && n_sorted {
        // Merge by (key, n), both ascending.
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let ord = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) => (o.key(), on[i]).cmp(&(n.key(), nn[j])),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    removal(out, i);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    upsert(out, j)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if old[i] != new[j] {
                        upsert(out, j)?;
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    } else {
        let mut by_id: HashMap<(&str, u32), usize> = old
            .iter()
            .enumerate()
            .map(|(i, e)| ((e.key(), on[i]), i))
            .collect();
        for (j, e) in new.iter().enumerate() {
            match by_id.remove(&(e.key(), nn[j])) {
                Some(i) if old[i] == *e => {}
                _ => upsert(out, j)?,
            }
        }
        let mut gone: Vec<usize> = by_id.into_values().collect();
        gone.sort_unstable();
        for i in gone {
            removal(out, i);
        }
    }
    // The order item exists for a non-empty list out of key order.
    let order_id = format!("{field}{ORDER_SUFFIX}");
    let had = !old.is_empty() && !o_sorted;
    let has = !new.is_empty() && !n_sorted;
    let same_order = had
        && has
        && old.len() == new.len()
        && old
            .iter()
            .zip(new)
            .zip(on.iter().zip(&nn))
            .all(|((o, n), (a, b))| o.key() == n.key() && a == b);
    if has && !same_order {
        let ids = new
            .iter()
            .zip(&nn)
            .map(|(e, n)| Value::String(element_id(field, e.key(), *n)));
        out.upserts
            .add(order_id, Value::Array(ids.collect()), false);
    } else if had && !has {
        out.removals.push(order_id);
    }
    Ok(())
}

/// Apply `changes` to the items of a split (blobs of upserts added; blobs no
/// longer referenced are not pruned): what an agent does with a delta.
pub fn apply_changes(items: &mut BTreeMap<String, Item>, changes: &SplitChanges) {
    for id in &changes.removals {
        items.remove(id);
    }
    for (id, item) in &changes.upserts.items {
        items.insert(id.clone(), item.clone());
    }
}

/// Bring `role` (the config the items formed before a change) to the config
/// they form after it, given each changed item id (a superset is fine) with its
/// new item (`None`: removed) and the blobs: only the changed elements are resolved and parsed,
/// instead of [`super::join`]ing every item. The agent's apply of a one-site
/// change is then proportional to the change, not to the server's sites.
///
/// `Ok(true)`: `role` is now exactly what `join` of the new items gives
/// (property-tested). `Ok(false)`: the change is not one this patches (a field
/// that is not an element of a keyed list, an order item, a duplicate key, a
/// list out of key order, an element whose key does not match its id); `role`
/// is then unspecified and the caller joins every item.
pub fn patch<'a, 'b>(
    role: &mut RoleConfig,
    changed: impl IntoIterator<Item = (&'b str, Option<&'b Item>)>,
    blob: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<bool, DeltaError> {
    let mut by_field: BTreeMap<&str, Vec<(&str, Option<Value>)>> = BTreeMap::new();
    for (id, item) in changed {
        let Some((field, key)) = id.split_once('/') else {
            return Ok(false);
        };
        if field.contains('#') || super::keyed_field(role.role(), field).is_none() {
            return Ok(false);
        }
        let value = match item {
            Some(item) => Some(super::resolve(item, &blob)?),
            None => None,
        };
        by_field.entry(field).or_default().push((key, value));
    }
    for (field, changes) in by_field {
        let done = match (&mut *role, field) {
            (RoleConfig::Web(c), "sites") => patch_list(&mut c.sites, changes),
            (RoleConfig::Dns(c), "zones") => patch_list(&mut c.zones, changes),
            (RoleConfig::Mail(c), "domains") => patch_list(&mut c.domains, changes),
            (RoleConfig::Files(c), "sites") => patch_list(&mut c.sites, changes),
            (RoleConfig::Files(c), "ftp_accounts") => patch_list(&mut c.ftp_accounts, changes),
            (RoleConfig::Files(c), "sync_clients") => patch_list(&mut c.sync_clients, changes),
            (RoleConfig::Files(c), "deployments") => patch_list(&mut c.deployments, changes),
            (RoleConfig::Files(c), "site_options") => patch_list(&mut c.site_options, changes),
            (RoleConfig::Files(c), "restores") => patch_list(&mut c.restores, changes),
            (RoleConfig::Db(c), "databases") => patch_list(&mut c.databases, changes),
            (RoleConfig::Db(c), "users") => patch_list(&mut c.users, changes),
            (RoleConfig::Db(c), "quotas") => patch_list(&mut c.quotas, changes),
            _ => false,
        };
        if !done {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The item `id` of `role` with the blobs it refers to, exactly as [`split`] of
/// the whole config makes it, for an element of a keyed list (`field/key`, or
/// `field#n/key` for the n-th duplicate); `None` for any other id or an element
/// that is not there. An agent keeps the config it built instead of every item's
/// content, and regenerates one element's blobs with this when a patch needs them,
/// without serializing the whole config.
pub fn split_element(role: &RoleConfig, id: &str) -> Option<Split> {
    let (head, key) = id.split_once('/')?;
    let (field, n) = match head.split_once('#') {
        Some((f, n)) => (f, n.parse::<usize>().ok().filter(|n| *n > 0)?),
        None => (head, 0),
    };
    let value = match (role, field) {
        (RoleConfig::Web(c), "sites") => nth(&c.sites, key, n),
        (RoleConfig::Dns(c), "zones") => nth(&c.zones, key, n),
        (RoleConfig::Mail(c), "domains") => nth(&c.domains, key, n),
        (RoleConfig::Files(c), "sites") => nth(&c.sites, key, n),
        (RoleConfig::Files(c), "ftp_accounts") => nth(&c.ftp_accounts, key, n),
        (RoleConfig::Files(c), "sync_clients") => nth(&c.sync_clients, key, n),
        (RoleConfig::Files(c), "deployments") => nth(&c.deployments, key, n),
        (RoleConfig::Files(c), "site_options") => nth(&c.site_options, key, n),
        (RoleConfig::Files(c), "restores") => nth(&c.restores, key, n),
        (RoleConfig::Db(c), "databases") => nth(&c.databases, key, n),
        (RoleConfig::Db(c), "users") => nth(&c.users, key, n),
        (RoleConfig::Db(c), "quotas") => nth(&c.quotas, key, n),
        _ => None,
    }?;
    let mut out = Split::default();
    out.add(id.to_owned(), value, true);
    Some(out)
}

/// The JSON of the n-th element of `list` keyed `key`.
fn nth<T: Keyed>(list: &[T], key: &str, n: usize) -> Option<Value> {
    let elem = list.iter().filter(|e| e.key() == key).nth(n)?;
    elem.to_json().ok()
}

/// Apply `(key, new element or None)` changes to a list in strict key order
/// (`false`, list unspecified, for anything else).
fn patch_list<T: Keyed>(list: &mut Vec<T>, changes: Vec<(&str, Option<Value>)>) -> bool {
    // An empty list is one whole-field item, never elements: a change to it is
    // no element change. A list out of order or with duplicate keys has an
    // order item or numbered ids.
    if list.is_empty() || !list.windows(2).all(|w| w[0].key() < w[1].key()) {
        return false;
    }
    for (key, value) in changes {
        let at = list.binary_search_by(|e| e.key().cmp(key));
        match (value, at) {
            (None, Ok(i)) => {
                list.remove(i);
            }
            // Not there: nothing to remove (callers may name a superset).
            (None, Err(_)) => {}
            (Some(v), at) => {
                let Ok(elem) = T::from_json(v) else {
                    return false;
                };
                if elem.key() != key {
                    return false;
                }
                match at {
                    Ok(i) => list[i] = elem,
                    Err(i) => list.insert(i, elem),
                }
            }
        }
    }
    // A list emptied by the change is the whole-field item again.
    !list.is_empty()
}

#[cfg(test)]
mod tests {
    use super::super::keyed_field;
    use super::*;

    /// The keyed lists visited are the fields `keyed_field` names, for every role.
    #[test]
    fn the_lists_visited_are_the_keyed_fields() {
        let roles = [
            RoleConfig::Web(WebConfig::default()),
            RoleConfig::Dns(DnsConfig::default()),
            RoleConfig::Mail(MailConfig::default()),
            RoleConfig::Files(FilesConfig::default()),
            RoleConfig::Db(DbRoleConfig::default()),
        ];
        for role in &roles {
            let mut v = Recorder {
                fields: Vec::new(),
                out: SplitChanges::default(),
                failed: None,
                diff: false,
            };
            assert!(visit(role, role, &mut v));
            let mut visited: Vec<&str> = v.fields.iter().map(|f| f.0).collect();
            visited.sort_unstable();
            let Value::Object(map) = serde_json::to_value(role).unwrap() else {
                panic!("not an object")
            };
            let mut keyed: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|f| keyed_field(role.role(), f).is_some())
                .collect();
            keyed.sort_unstable();
            assert_eq!(visited, keyed, "role {}", role.role());
        }
    }
}
