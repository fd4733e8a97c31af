//! The pure part: desired config → what one engine should hold ([`render`]), what
//! it holds → the actions that converge it ([`diff`]), sizes → quota states
//! ([`quota_states`]). No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use model::DbEngine;
use proto::agent_v1::{DbRoleConfig, RejectedObject};
use serde::Serialize;

use crate::ident::{Name, Verifier};

/// A database one engine should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSpec {
    /// Owning customer account (quota and report).
    pub owner: String,
    /// Trash entry to load when the database has to be created.
    pub restore_from: Option<String>,
}

/// A login one engine should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Its password verifier.
    pub verifier: Verifier,
    /// The databases it has privileges on, and whether it may write there (false
    /// while the database's owner is over quota).
    pub grants: BTreeMap<Name, bool>,
}

/// Everything one engine should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Databases by name.
    pub dbs: BTreeMap<Name, DbSpec>,
    /// Logins by name.
    pub users: BTreeMap<Name, UserSpec>,
    /// Logins whose entry is invalid (e.g. a malformed verifier): left exactly as
    /// they are, neither changed nor dropped.
    pub keep_users: BTreeSet<Name>,
}

/// What an engine holds now, as far as reconcile cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    /// Databases hostplane created (its registry), whether or not they still exist.
    pub owned_dbs: BTreeSet<String>,
    /// Every database on the server.
    pub present_dbs: BTreeSet<String>,
    /// Logins hostplane created (its registry).
    pub owned_users: BTreeSet<String>,
    /// Every login on the server with its stored verifier (empty when unknown).
    pub present_users: BTreeMap<String, String>,
    /// Database privileges of hostplane's logins: `(user, db)` → may write.
    pub grants: BTreeMap<(String, String), bool>,
}

/// One step of a reconcile, in the order [`diff`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Register and create a login.
    CreateUser(Name, Verifier),
    /// Replace a login's verifier (a password change).
    SetPassword(Name, Verifier),
    /// Register and create an empty database.
    CreateDb(Name),
    /// Register, create and load a database from a trash entry.
    RestoreDb(Name, String),
    /// Give `user` its privileges on `db` (`writable` false: read and delete only).
    Grant {
        /// The login.
        user: Name,
        /// The database.
        db: Name,
        /// Whether writes are allowed.
        writable: bool,
    },
    /// Switch writes on or off for an existing grant (quota).
    SetWritable {
        /// The login.
        user: Name,
        /// The database.
        db: Name,
        /// Whether writes are allowed.
        writable: bool,
    },
    /// Take every privilege of `user` on `db` away.
    Revoke {
        /// The login.
        user: Name,
        /// The database (any name the server reported).
        db: String,
    },
    /// Drop a login hostplane created.
    DropUser(Name),
    /// Dump to the trash, then drop a database hostplane created.
    DropDb(Name),
    /// Remove a registry entry of a login that no longer exists.
    ForgetUser(String),
    /// Remove a registry entry of a database that no longer exists.
    ForgetDb(String),
}

/// Render the part of `cfg` for `engine`. `frozen` lists customers over quota: their
/// databases are granted read-only. Object by object: an entry that fails
/// validation (names through [`model::DbIdent`], verifiers of the engine's exact
/// shape) is left out (a login with a bad verifier is left exactly as it is, so it
/// keeps its password), a grant on a database this engine does not hold is left
/// out; each is returned as rejected, every other entry is taken as configured.
pub fn render(
    cfg: &DbRoleConfig,
    engine: DbEngine,
    frozen: &BTreeSet<String>,
) -> (Desired, Vec<RejectedObject>) {
    let mut rejected = Vec::new();
    let mut out = Desired::default();
    for db in cfg.databases.iter().filter(|d| d.engine == engine) {
        match Name::new("database", &db.name) {
            Ok(name) => {
                out.dbs.insert(
                    name,
                    DbSpec {
                        owner: db.owner.clone(),
                        restore_from: db.restore_from.clone(),
                    },
                );
            }
            Err(e) => rejected.push(RejectedObject::new(format!("database {}", e.value), e)),
        }
    }
    for user in cfg.users.iter().filter(|u| u.engine == engine) {
        let name = match Name::new("user", &user.name) {
            Ok(n) => n,
            Err(e) => {
                rejected.push(RejectedObject::new(format!("db user {}", e.value), e));
                continue;
            }
        };
        let object = format!("db user {name}");
        let verifier = match Verifier::for_engine(engine, &user.password_verifier) {
            Ok(v) => v,
            Err(e) => {
                rejected.push(RejectedObject::new(
                    object,
                    format!("{e}; login left unchanged"),
                ));
                out.keep_users.insert(name);
                continue;
            }
        };
        let mut grants = BTreeMap::new();
        let mut bad_grants = Vec::new();
        for db in &user.databases {
            match Name::new("database", db) {
                Ok(d) => match out.dbs.get(&d) {
                    Some(spec) => {
                        grants.insert(d, !frozen.contains(&spec.owner));
                    }
                    None => bad_grants.push(format!(
                        "database {d} is not a {engine} database of this server"
                    )),
                },
                Err(e) => bad_grants.push(e.to_string()),
            }
        }
        if !bad_grants.is_empty() {
            rejected.push(RejectedObject::new(
                object,
                format!("grants left out: {}", bad_grants.join("; ")),
            ));
        }
        out.users.insert(name, UserSpec { verifier, grants });
    }
    (out, rejected)
}

/// The actions that turn `have` into `want`, and conflicts found (a desired name
/// that exists on the server but was not created by hostplane is never touched).
pub fn diff(want: &Desired, have: &Existing) -> (Vec<Action>, Vec<String>) {
    let mut problems = Vec::new();
    let foreign_user = |n: &Name| {
        have.present_users.contains_key(n.as_str()) && !have.owned_users.contains(n.as_str())
    };
    let foreign_db =
        |n: &Name| have.present_dbs.contains(n.as_str()) && !have.owned_dbs.contains(n.as_str());

    let mut users = Vec::new();
    for (name, spec) in &want.users {
        if foreign_user(name) {
            problems.push(format!(
                "user {name} exists and was not created by hostplane; left alone"
            ));
            continue;
        }
        match have.present_users.get(name.as_str()) {
            None => users.push(Action::CreateUser(name.clone(), spec.verifier.clone())),
            Some(stored) if stored != spec.verifier.as_str() => {
                users.push(Action::SetPassword(name.clone(), spec.verifier.clone()))
            }
            Some(_) => {}
        }
    }
    let mut dbs = Vec::new();
    for (name, spec) in &want.dbs {
        if foreign_db(name) {
            problems.push(format!(
                "database {name} exists and was not created by hostplane; left alone"
            ));
            continue;
        }
        if !have.present_dbs.contains(name.as_str()) {
            dbs.push(match &spec.restore_from {
                Some(entry) => Action::RestoreDb(name.clone(), entry.clone()),
                None => Action::CreateDb(name.clone()),
            });
        }
    }
    let (grants, revokes) = diff_grants(want, have, &foreign_user, &foreign_db);
    let mut drops = Vec::new();
    for user in have.owned_users.iter() {
        let listed = |n: &Name| n.as_str() == user;
        if want.users.keys().any(listed) || want.keep_users.iter().any(listed) {
            continue;
        }
        match (
            have.present_users.contains_key(user),
            Name::new("user", user),
        ) {
            (true, Ok(n)) => drops.push(Action::DropUser(n)),
            (true, Err(e)) => problems.push(format!("registry: {e}")),
            (false, _) => drops.push(Action::ForgetUser(user.clone())),
        }
    }
    for db in have.owned_dbs.iter() {
        if want.dbs.keys().any(|n| n.as_str() == db) {
            continue;
        }
        match (have.present_dbs.contains(db), Name::new("database", db)) {
            (true, Ok(n)) => drops.push(Action::DropDb(n)),
            (true, Err(e)) => problems.push(format!("registry: {e}")),
            (false, _) => drops.push(Action::ForgetDb(db.clone())),
        }
    }
    let mut actions = users;
    actions.extend(dbs);
    actions.extend(grants);
    actions.extend(revokes);
    actions.extend(drops);
    (actions, problems)
}

fn diff_grants(
    want: &Desired,
    have: &Existing,
    foreign_user: &dyn Fn(&Name) -> bool,
    foreign_db: &dyn Fn(&Name) -> bool,
) -> (Vec<Action>, Vec<Action>) {
    let mut grants = Vec::new();
    for (user, spec) in &want.users {
        if foreign_user(user) {
            continue;
        }
        for (db, &writable) in &spec.grants {
            if foreign_db(db) {
                continue;
            }
            let key = (user.as_str().to_owned(), db.as_str().to_owned());
            match have.grants.get(&key) {
                None => grants.push(Action::Grant {
                    user: user.clone(),
                    db: db.clone(),
                    writable,
                }),
                Some(&w) if w != writable => grants.push(Action::SetWritable {
                    user: user.clone(),
                    db: db.clone(),
                    writable,
                }),
                Some(_) => {}
            }
        }
    }
    let mut revokes = Vec::new();
    for (user, db) in have.grants.keys() {
        if !have.owned_users.contains(user) || want.keep_users.iter().any(|n| n.as_str() == user) {
            continue;
        }
        let wanted = want
            .users
            .iter()
            .find(|(n, _)| n.as_str() == user)
            .map(|(_, s)| s.grants.keys().any(|d| d.as_str() == db))
            .unwrap_or(false);
        // A user that is about to be dropped loses everything with the drop.
        let kept = want.users.keys().any(|n| n.as_str() == user);
        if !wanted && kept {
            if let Ok(user) = Name::new("user", user) {
                revokes.push(Action::Revoke {
                    user,
                    db: db.clone(),
                });
            }
        }
    }
    (grants, revokes)
}

/// How close a customer is to its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaLevel {
    /// Below 90 %.
    Ok,
    /// 90 % or more: reported as a warning.
    Warning,
    /// Above 100 %: writes are stopped until usage is back under the limit.
    Exceeded,
}

/// One customer's usage against its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// Customer account name.
    pub customer: String,
    /// Bytes used by all its databases on this server (both engines).
    pub used_bytes: u64,
    /// The quota in bytes.
    pub limit_bytes: u64,
    /// The resulting level.
    pub level: QuotaLevel,
}

/// Quota states of every customer with a non-zero quota, from `(owner, bytes)` per
/// database. A quota of 0 MiB means unlimited.
pub fn quota_states(sizes: &[(String, u64)], quotas: &[(String, u64)]) -> Vec<QuotaStatus> {
    let mut used: BTreeMap<&str, u64> = BTreeMap::new();
    for (owner, bytes) in sizes {
        let e = used.entry(owner.as_str()).or_default();
        *e = e.saturating_add(*bytes);
    }
    let mut out: Vec<QuotaStatus> = quotas
        .iter()
        .filter(|(_, mib)| *mib > 0)
        .map(|(customer, mib)| {
            let limit = mib.saturating_mul(1024 * 1024);
            let u = used.get(customer.as_str()).copied().unwrap_or(0);
            let level = if u > limit {
                QuotaLevel::Exceeded
            } else if u.saturating_mul(10) >= limit.saturating_mul(9) {
                QuotaLevel::Warning
            } else {
                QuotaLevel::Ok
            };
            QuotaStatus {
                customer: customer.clone(),
                used_bytes: u,
                limit_bytes: limit,
                level,
            }
        })
        .collect();
    out.sort_by(|a, b| a.customer.cmp(&b.customer));
    out.dedup_by(|a, b| a.customer == b.customer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::{DbConfig, DbUserConfig};

    const V1: &str = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19";
    const V2: &str = "*0000000000000000000000000000000000000000";

    fn n(s: &str) -> Name {
        Name::new("x", s).unwrap()
    }

    fn cfg() -> DbRoleConfig {
        DbRoleConfig {
            databases: vec![
                DbConfig {
                    name: "shop".into(),
                    engine: DbEngine::Mariadb,
                    owner: "alice".into(),
                    restore_from: None,
                },
                DbConfig {
                    name: "blog".into(),
                    engine: DbEngine::Mariadb,
                    owner: "bob".into(),
                    restore_from: Some("blog-20260101T000000000Z".into()),
                },
                DbConfig {
                    name: "evil`x".into(),
                    engine: DbEngine::Mariadb,
                    owner: "bob".into(),
                    restore_from: None,
                },
                DbConfig {
                    name: "pgdb".into(),
                    engine: DbEngine::Postgres,
                    owner: "bob".into(),
                    restore_from: None,
                },
            ],
            users: vec![
                DbUserConfig {
                    name: "alice_u".into(),
                    engine: DbEngine::Mariadb,
                    password_verifier: V1.into(),
                    databases: vec!["shop".into(), "pgdb".into()],
                },
                DbUserConfig {
                    name: "bob_u".into(),
                    engine: DbEngine::Mariadb,
                    password_verifier: "plaintext".into(),
                    databases: vec!["blog".into()],
                },
            ],
            quotas: vec![],
            trash_days: 0,
        }
    }

    #[test]
    fn render_skips_and_reports_bad_entries() {
        let (d, problems) = render(&cfg(), DbEngine::Mariadb, &BTreeSet::new());
        assert_eq!(
            d.dbs.keys().map(Name::as_str).collect::<Vec<_>>(),
            ["blog", "shop"]
        );
        assert_eq!(d.users.len(), 1);
        assert_eq!(d.keep_users, BTreeSet::from([n("bob_u")]));
        assert_eq!(
            d.users[&n("alice_u")].grants,
            BTreeMap::from([(n("shop"), true)])
        );
        let objects: Vec<&str> = problems.iter().map(|r| r.object.as_str()).collect();
        assert_eq!(
            objects,
            ["database evil`x", "db user alice_u", "db user bob_u"],
            "{problems:?}"
        );
        let frozen = BTreeSet::from(["alice".to_string()]);
        let (d, _) = render(&cfg(), DbEngine::Mariadb, &frozen);
        assert!(!d.users[&n("alice_u")].grants[&n("shop")]);
    }

    #[test]
    fn diff_from_empty_then_converged() {
        let (d, _) = render(&cfg(), DbEngine::Mariadb, &BTreeSet::new());
        let (a, p) = diff(&d, &Existing::default());
        assert!(p.is_empty());
        assert_eq!(
            a,
            vec![
                Action::CreateUser(n("alice_u"), Verifier::mariadb(V1).unwrap()),
                Action::RestoreDb(n("blog"), "blog-20260101T000000000Z".into()),
                Action::CreateDb(n("shop")),
                Action::Grant {
                    user: n("alice_u"),
                    db: n("shop"),
                    writable: true
                },
            ]
        );
        let have = Existing {
            owned_dbs: ["blog", "shop"].map(String::from).into(),
            present_dbs: ["blog", "shop", "mysql"].map(String::from).into(),
            owned_users: ["alice_u".to_string()].into(),
            present_users: [("alice_u".to_string(), V1.to_string())].into(),
            grants: [(("alice_u".to_string(), "shop".to_string()), true)].into(),
        };
        assert_eq!(diff(&d, &have), (vec![], vec![]));
    }

    #[test]
    fn diff_changes_revokes_drops_and_leaves_foreign_alone() {
        let (d, _) = render(&cfg(), DbEngine::Mariadb, &BTreeSet::new());
        let have = Existing {
            owned_dbs: ["shop", "old", "gone"].map(String::from).into(),
            present_dbs: ["blog", "shop", "old", "opsdb"].map(String::from).into(),
            owned_users: ["alice_u", "olduser", "bob_u"].map(String::from).into(),
            present_users: [
                ("bob_u".to_string(), V2.to_string()),
                ("alice_u".to_string(), V2.to_string()),
                ("olduser".to_string(), V2.to_string()),
                ("root".to_string(), String::new()),
            ]
            .into(),
            grants: [
                (("alice_u".to_string(), "shop".to_string()), false),
                (("alice_u".to_string(), "opsdb".to_string()), true),
                // bob_u's entry is invalid: kept as it is, grants included
                (("bob_u".to_string(), "blog".to_string()), true),
            ]
            .into(),
        };
        let (a, p) = diff(&d, &have);
        assert_eq!(p.len(), 1, "{p:?}"); // blog exists, not ours
        assert_eq!(
            a,
            vec![
                Action::SetPassword(n("alice_u"), Verifier::mariadb(V1).unwrap()),
                Action::SetWritable {
                    user: n("alice_u"),
                    db: n("shop"),
                    writable: true
                },
                Action::Revoke {
                    user: n("alice_u"),
                    db: "opsdb".into()
                },
                Action::DropUser(n("olduser")),
                Action::ForgetDb("gone".into()),
                Action::DropDb(n("old")),
            ]
        );
    }

    #[test]
    fn quotas() {
        let mib = 1024 * 1024;
        let sizes = vec![
            ("a".to_string(), 50 * mib),
            ("a".to_string(), 45 * mib),
            ("b".to_string(), 101 * mib),
            ("c".to_string(), 10 * mib),
        ];
        let q = quota_states(
            &sizes,
            &[
                ("a".into(), 100),
                ("b".into(), 100),
                ("c".into(), 100),
                ("d".into(), 0),
            ],
        );
        let levels: Vec<_> = q.iter().map(|s| (s.customer.as_str(), s.level)).collect();
        assert_eq!(
            levels,
            [
                ("a", QuotaLevel::Warning),
                ("b", QuotaLevel::Exceeded),
                ("c", QuotaLevel::Ok)
            ]
        );
    }
}
