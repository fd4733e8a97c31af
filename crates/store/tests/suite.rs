//! One behavioural suite run against both backends: SQLite in a temporary directory
//! and PostgreSQL at 127.0.0.1:5432 (a fresh database per test, dropped afterwards).
//!
//! PostgreSQL tests fail when the server is unreachable, unless `HOSTPLANE_SKIP_PG=1`.
//! `cargo test -p store --test suite -- --ignored --nocapture` runs the benchmarks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use model::entity::{Account, Cluster, Domain, Kind, MailAlias, Mailbox, Site, Ttls};
use model::{AccountKind, DomainName, EmailAddress, Id, LocalPart, PlacementMode, Role, Slug};
use sqlx::{AssertSqlSafe, Connection, Executor};
use store::{Actor, BackendKind, ListQuery, NewObject, Scope, Store, StoreError, Stored};

// ---------------------------------------------------------------------------------
// Environments
// ---------------------------------------------------------------------------------

/// Base URL of the test PostgreSQL server.
const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/";

/// A PostgreSQL database that exists for one test and is dropped when this guard
/// drops (also when the test panics).
struct PgDb {
    name: String,
}

impl PgDb {
    async fn create() -> Result<Option<Self>> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let admin = format!("{PG_BASE}postgres");
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if std::env::var("HOSTPLANE_SKIP_PG").as_deref() == Ok("1") => {
                eprintln!("skipping PostgreSQL test (HOSTPLANE_SKIP_PG=1): {e}");
                return Ok(None);
            }
            Err(e) => bail!(
                "PostgreSQL is unreachable at {admin}: {e}. Start it (trust auth for user \
                 `postgres`) or set HOSTPLANE_SKIP_PG=1 to skip the PostgreSQL half of the suite"
            ),
        };
        let name = format!(
            "hp_store_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        conn.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        conn.close().await?;
        Ok(Some(Self { name }))
    }

    fn url(&self) -> String {
        format!("{PG_BASE}{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside the test's runtime (or while it unwinds): use a thread
        // with its own runtime.
        let dropped = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&format!("{PG_BASE}postgres")).await?;
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await?;
                conn.close().await?;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}

/// Where a test's store lives.
enum Env {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres(PgDb),
}

impl Env {
    fn sqlite() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data").join("store.db");
        Ok(Env::Sqlite { _dir: dir, path })
    }

    async fn postgres() -> Result<Option<Self>> {
        Ok(PgDb::create().await?.map(Env::Postgres))
    }

    /// Open (or reopen) the store.
    async fn open(&self) -> Result<Store> {
        let store = match self {
            Env::Sqlite { path, .. } => Store::open_sqlite(path).await?,
            Env::Postgres(db) => Store::open_url(&db.url()).await?,
        };
        Ok(store)
    }

    /// Run raw SQL against the database behind the store's back.
    async fn raw(&self, sql: String) -> Result<()> {
        match self {
            Env::Sqlite { path, .. } => {
                let url = format!("sqlite://{}", path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await?;
                c.execute(AssertSqlSafe(sql)).await?;
                c.close().await?;
            }
            Env::Postgres(db) => {
                let mut c = sqlx::PgConnection::connect(&db.url()).await?;
                c.execute(AssertSqlSafe(sql)).await?;
                c.close().await?;
            }
        }
        Ok(())
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let env = super::Env::sqlite()?;
                    super::$case(&env).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let Some(env) = super::Env::postgres().await? else { return Ok(()) };
                    super::$case(&env).await
                }
            )*
        }
    };
}

suite!(
    create_get_list_pagination,
    scope_filtering,
    reseller_change_moves_objects,
    name_and_key_conflicts,
    update_replaces_keys,
    cascade_delete,
    revision_and_rollback,
    events_record_changes,
    concurrent_writers,
    group_commit_isolates_failures,
    data_survives_reopen,
    missing_owner_or_parent,
    corrupt_document,
    counted_creates_never_exceed_a_limit,
    domains_under_and_reassign,
    counters_match_rows,
    change_feed,
    bulk_reads_match_single_reads,
    create_many_matches_create,
    bulk_statements_span_chunks,
);

#[path = "suite/bulk.rs"]
mod bulk;
use bulk::{
    bulk_reads_match_single_reads, bulk_statements_span_chunks, create_many_matches_create,
};

#[path = "suite/counters.rs"]
mod counters;
use counters::counters_match_rows;

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

fn system() -> Actor {
    Actor {
        account: None,
        label: "system".into(),
    }
}

fn account(name: &str, kind: AccountKind, reseller: Option<Id>) -> Result<Account> {
    Ok(Account {
        name: Slug::new(name)?,
        kind,
        display_name: name.to_uppercase(),
        email: None,
        reseller,
        default_clusters: BTreeMap::new(),
        password_hash: None,
        disabled: false,
        db_quota_mb: None,
        plan: None,
        limits: Default::default(),
        may_choose_clusters: false,
    })
}

fn new<T>(name: &str, owner: Option<Id>, parent: Option<Id>, data: T) -> NewObject<T> {
    NewObject {
        name: name.into(),
        owner,
        parent,
        data,
    }
}

fn domain(name: &str, customer: Id) -> Result<NewObject<Domain>> {
    Ok(new(
        name,
        Some(customer),
        None,
        Domain {
            name: DomainName::new(name)?,
            customer,
            placements: BTreeMap::new(),
        },
    ))
}

fn mailbox(domain: &Stored<Domain>, local: &str) -> Result<NewObject<Mailbox>> {
    let address = format!("{local}@{}", domain.meta.name);
    Ok(new(
        &address,
        domain.meta.owner,
        Some(domain.meta.id),
        Mailbox {
            domain: domain.meta.id,
            local_part: LocalPart::new(local)?,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            quota_mb: 100,
            display_name: String::new(),
            enabled: true,
        },
    ))
}

fn alias(domain: &Stored<Domain>, local: &str, to: &str) -> Result<NewObject<MailAlias>> {
    let address = format!("{local}@{}", domain.meta.name);
    Ok(new(
        &address,
        domain.meta.owner,
        Some(domain.meta.id),
        MailAlias {
            domain: domain.meta.id,
            local_part: LocalPart::new(local)?,
            destinations: vec![EmailAddress::new(to)?],
        },
    ))
}

fn site(domain: &Stored<Domain>, hosts: &[&str]) -> Result<NewObject<Site>> {
    let aliases = hosts
        .iter()
        .filter(|h| **h != domain.meta.name)
        .map(|h| DomainName::new(h))
        .collect::<Result<_, _>>()?;
    Ok(new(
        &domain.meta.name,
        domain.meta.owner,
        Some(domain.meta.id),
        Site {
            web: Default::default(),
            domain: domain.meta.id,
            aliases,
            php: true,
            mode: PlacementMode::Single,
            https_redirect: false,
            active_server: None,
            deployment: None,
            previous_deployments: Vec::new(),
            files: Default::default(),
            cron: Vec::new(),
            cron_next_id: 0,
            cron_holder: None,
        },
    ))
}

fn cluster(name: &str) -> Result<NewObject<Cluster>> {
    Ok(new(
        name,
        None,
        None,
        Cluster {
            name: Slug::new(name)?,
            role: Role::Web,
            description: String::new(),
            is_default: true,
            ttls: Ttls::default(),
            external_secondaries: Vec::new(),
            mail_writer: None,
            hostname: None,
        },
    ))
}

/// A committed customer account (its own owner).
async fn customer(store: &Store, name: &str, reseller: Option<Id>) -> Result<Stored<Account>> {
    let mut tx = store.begin(system()).await?;
    let c = tx
        .create(new(
            name,
            None,
            None,
            account(name, AccountKind::Customer, reseller)?,
        ))
        .await?;
    tx.commit().await?;
    Ok(c)
}

/// A committed domain of `owner`.
async fn add_domain(store: &Store, name: &str, owner: Id) -> Result<Stored<Domain>> {
    let mut tx = store.begin(system()).await?;
    let d = tx.create(domain(name, owner)?).await?;
    tx.commit().await?;
    Ok(d)
}

fn ids<T>(rows: &[Stored<T>]) -> Vec<Id> {
    rows.iter().map(|r| r.meta.id).collect()
}

fn expect_conflict<T: std::fmt::Debug>(r: store::Result<T>, ns: &str, k: &str) -> Result<()> {
    match r {
        Err(StoreError::Conflict { ns: n, key }) if n == ns && key == k => Ok(()),
        other => bail!("expected Conflict {{ {ns}, {k} }}, got {other:?}"),
    }
}

fn expect_not_found<T: std::fmt::Debug>(r: store::Result<T>, kind: &str, id: Id) -> Result<()> {
    match r {
        Err(StoreError::NotFound { kind: k, id: i }) if k == kind && i == id => Ok(()),
        other => bail!("expected NotFound {{ {kind}, {id} }}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------

async fn create_get_list_pagination(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    assert_eq!(c.meta.owner, Some(c.meta.id), "a customer owns itself");
    assert_eq!(c.meta.reseller, None);

    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let mut tx = store.begin(system()).await?;
    let rev = tx.revision();
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            tx.create(domain(&format!("d{i:02}.example.com"), c.meta.id)?)
                .await?,
        );
    }
    assert_eq!(tx.commit().await?, rev);

    let first = &created[0];
    assert_eq!(first.meta.name, "d00.example.com");
    assert_eq!(first.meta.owner, Some(c.meta.id));
    assert_eq!((first.meta.created_rev, first.meta.updated_rev), (rev, rev));
    assert!(first.meta.created_at > before && first.meta.created_at == first.meta.updated_at);

    // get / get_by_name return exactly what create returned.
    let got = store
        .get::<Domain>(Scope::All, first.meta.id)
        .await?
        .context("get")?;
    assert_eq!(&got, first);
    let by_name = store
        .get_by_name::<Domain>(Scope::All, "d07.example.com")
        .await?
        .context("by name")?;
    assert_eq!(by_name, created[7]);
    assert!(store
        .get_by_name::<Domain>(Scope::All, "nope.example.com")
        .await?
        .is_none());
    // The kind is part of the lookup.
    assert!(store
        .get::<Mailbox>(Scope::All, first.meta.id)
        .await?
        .is_none());
    assert!(store
        .get_by_name::<Account>(Scope::All, "d07.example.com")
        .await?
        .is_none());

    // Pages of 10 with cursors.
    let mut pages = Vec::new();
    let mut q = ListQuery::new(Scope::All, 10);
    loop {
        let page = store.list::<Domain>(&q).await?;
        if page.is_empty() {
            break;
        }
        q.after = page.last().map(|p| p.meta.id);
        pages.push(page);
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    let listed: Vec<Id> = pages.iter().flat_map(|p| ids(p)).collect();
    assert_eq!(listed, ids(&created), "all domains, in id order");
    assert_eq!(pages[1][0], created[10]);

    // limit 0 means the default page (100); all() is everything of the kind.
    assert_eq!(
        store
            .list::<Domain>(&ListQuery::new(Scope::All, 0))
            .await?
            .len(),
        25
    );
    assert_eq!(ids(&store.all::<Domain>().await?), ids(&created));
    assert_eq!(store.count(Kind::Domain, Scope::All).await?, 25);
    assert_eq!(store.count(Kind::Account, Scope::All).await?, 1);

    // owner and parent filters.
    let other = customer(&store, "other", None).await?;
    let od = add_domain(&store, "other.example.com", other.meta.id).await?;
    let q = ListQuery {
        owner: Some(other.meta.id),
        ..ListQuery::new(Scope::All, 100)
    };
    assert_eq!(ids(&store.list::<Domain>(&q).await?), vec![od.meta.id]);

    let mut tx = store.begin(system()).await?;
    let m1 = tx.create(mailbox(first, "info")?).await?;
    let m2 = tx.create(mailbox(first, "sales")?).await?;
    tx.create(mailbox(&created[1], "info")?).await?;
    assert_eq!(
        ids(&tx.children::<Mailbox>(first.meta.id).await?),
        vec![m1.meta.id, m2.meta.id]
    );
    tx.commit().await?;
    let q = ListQuery {
        parent: Some(first.meta.id),
        ..ListQuery::new(Scope::All, 100)
    };
    assert_eq!(
        ids(&store.list::<Mailbox>(&q).await?),
        vec![m1.meta.id, m2.meta.id]
    );
    let q = ListQuery {
        parent: Some(first.meta.id),
        after: Some(m1.meta.id),
        ..ListQuery::new(Scope::All, 100)
    };
    assert_eq!(ids(&store.list::<Mailbox>(&q).await?), vec![m2.meta.id]);
    assert_eq!(
        store
            .find_key("mail_address", "sales@d00.example.com")
            .await?,
        Some((Kind::Mailbox, m2.meta.id))
    );
    assert_eq!(
        store
            .find_key("mail_address", "nobody@d00.example.com")
            .await?,
        None
    );
    assert_eq!(
        store.find_key("hostname", "sales@d00.example.com").await?,
        None
    );
    Ok(())
}

/// The tenancy fixture: admin, a reseller R with customer C1, an independent
/// customer C2, domains of each and an operator object.
struct Tenants {
    admin: Stored<Account>,
    r: Stored<Account>,
    c1: Stored<Account>,
    c2: Stored<Account>,
    d1: Stored<Domain>,
    d2: Stored<Domain>,
    dr: Stored<Domain>,
    cl: Stored<Cluster>,
}

async fn tenants(store: &Store) -> Result<Tenants> {
    let mut tx = store.begin(system()).await?;
    let admin = tx
        .create(new(
            "root",
            None,
            None,
            account("root", AccountKind::Admin, None)?,
        ))
        .await?;
    let r = tx
        .create(new(
            "resell",
            None,
            None,
            account("resell", AccountKind::Reseller, None)?,
        ))
        .await?;
    let c1 = tx
        .create(new(
            "cust1",
            None,
            None,
            account("cust1", AccountKind::Customer, Some(r.meta.id))?,
        ))
        .await?;
    let c2 = tx
        .create(new(
            "cust2",
            None,
            None,
            account("cust2", AccountKind::Customer, None)?,
        ))
        .await?;
    let d1 = tx.create(domain("one.example", c1.meta.id)?).await?;
    let d2 = tx.create(domain("two.example", c2.meta.id)?).await?;
    let dr = tx.create(domain("reseller.example", r.meta.id)?).await?;
    let cl = tx.create(cluster("web-eu")?).await?;
    tx.commit().await?;
    Ok(Tenants {
        admin,
        r,
        c1,
        c2,
        d1,
        d2,
        dr,
        cl,
    })
}

async fn scope_filtering(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let t = tenants(&store).await?;
    let (r, c1, c2) = (t.r.meta.id, t.c1.meta.id, t.c2.meta.id);

    // Ownership and the derived reseller.
    assert_eq!(
        (t.admin.meta.owner, t.admin.meta.reseller),
        (None, None),
        "admins are operator objects"
    );
    assert_eq!((t.r.meta.owner, t.r.meta.reseller), (Some(r), Some(r)));
    assert_eq!((t.c1.meta.owner, t.c1.meta.reseller), (Some(c1), Some(r)));
    assert_eq!((t.c2.meta.owner, t.c2.meta.reseller), (Some(c2), None));
    assert_eq!(t.d1.meta.reseller, Some(r));
    assert_eq!(t.dr.meta.reseller, Some(r));
    assert_eq!(t.d2.meta.reseller, None);
    assert_eq!(t.cl.meta.owner, None);
    // What create returned is what is stored.
    assert_eq!(
        store.get::<Account>(Scope::All, c1).await?.as_ref(),
        Some(&t.c1)
    );

    // get
    let vis = |s: Scope, id: Id| {
        let store = store.clone();
        async move { Ok::<_, anyhow::Error>(store.get::<Domain>(s, id).await?.is_some()) }
    };
    assert!(vis(Scope::All, t.d2.meta.id).await?);
    assert!(vis(Scope::Customer(c1), t.d1.meta.id).await?);
    assert!(!vis(Scope::Customer(c1), t.d2.meta.id).await?);
    assert!(!vis(Scope::Customer(c1), t.dr.meta.id).await?);
    assert!(vis(Scope::Reseller(r), t.d1.meta.id).await?);
    assert!(vis(Scope::Reseller(r), t.dr.meta.id).await?);
    assert!(!vis(Scope::Reseller(r), t.d2.meta.id).await?);
    assert!(store
        .get::<Cluster>(Scope::All, t.cl.meta.id)
        .await?
        .is_some());
    assert!(store
        .get::<Cluster>(Scope::Reseller(r), t.cl.meta.id)
        .await?
        .is_none());
    assert!(store
        .get::<Cluster>(Scope::Customer(c1), t.cl.meta.id)
        .await?
        .is_none());
    assert!(
        store
            .get::<Account>(Scope::Customer(c1), c1)
            .await?
            .is_some(),
        "a customer sees itself"
    );
    assert!(store
        .get::<Account>(Scope::Customer(c1), r)
        .await?
        .is_none());
    assert!(store
        .get::<Account>(Scope::Reseller(r), t.admin.meta.id)
        .await?
        .is_none());
    assert!(store
        .get_by_name::<Domain>(Scope::Customer(c2), "two.example")
        .await?
        .is_some());
    assert!(store
        .get_by_name::<Domain>(Scope::Customer(c2), "one.example")
        .await?
        .is_none());
    assert!(store
        .get_by_name::<Domain>(Scope::Reseller(r), "one.example")
        .await?
        .is_some());

    // list and count
    let domains = |s: Scope| {
        let store = store.clone();
        async move { Ok::<_, anyhow::Error>(ids(&store.list::<Domain>(&ListQuery::new(s, 100)).await?)) }
    };
    assert_eq!(
        domains(Scope::All).await?,
        vec![t.d1.meta.id, t.d2.meta.id, t.dr.meta.id]
    );
    assert_eq!(
        domains(Scope::Reseller(r)).await?,
        vec![t.d1.meta.id, t.dr.meta.id]
    );
    assert_eq!(domains(Scope::Customer(c1)).await?, vec![t.d1.meta.id]);
    assert_eq!(domains(Scope::Customer(c2)).await?, vec![t.d2.meta.id]);
    assert_eq!(
        domains(Scope::Customer(t.admin.meta.id)).await?,
        Vec::<Id>::new()
    );
    let accounts = store
        .list::<Account>(&ListQuery::new(Scope::Reseller(r), 100))
        .await?;
    assert_eq!(ids(&accounts), vec![r, c1]);
    // Filters combine with the scope: C2's domains are not visible to R.
    let q = ListQuery {
        owner: Some(c2),
        ..ListQuery::new(Scope::Reseller(r), 100)
    };
    assert!(store.list::<Domain>(&q).await?.is_empty());
    for (scope, domains, accounts, clusters) in [
        (Scope::All, 3, 4, 1),
        (Scope::Reseller(r), 2, 2, 0),
        (Scope::Customer(c1), 1, 1, 0),
        (Scope::Customer(c2), 1, 1, 0),
    ] {
        assert_eq!(
            store.count(Kind::Domain, scope).await?,
            domains,
            "{scope:?}"
        );
        assert_eq!(
            store.count(Kind::Account, scope).await?,
            accounts,
            "{scope:?}"
        );
        assert_eq!(
            store.count(Kind::Cluster, scope).await?,
            clusters,
            "{scope:?}"
        );
    }

    // events
    let mut tx = store.begin(system()).await?;
    tx.event(
        "placement.warning",
        Kind::Domain,
        Some((t.d1.meta.id, "one.example")),
        Some(c1),
        serde_json::json!({"w": 1}),
    )
    .await?;
    tx.event(
        "maintenance",
        Kind::Cluster,
        None,
        None,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    let names = |s: Scope| {
        let store = store.clone();
        async move {
            let ev = store.events(s, None, 1000).await?;
            Ok::<_, anyhow::Error>(
                ev.into_iter()
                    .map(|e| (e.action, e.object_name))
                    .collect::<BTreeSet<_>>(),
            )
        }
    };
    let set = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, n)| (a.to_string(), n.to_string()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        names(Scope::Customer(c1)).await?,
        set(&[
            ("create", "cust1"),
            ("create", "one.example"),
            ("placement.warning", "one.example")
        ])
    );
    assert_eq!(
        names(Scope::Customer(c2)).await?,
        set(&[("create", "cust2"), ("create", "two.example")])
    );
    assert_eq!(
        names(Scope::Reseller(r)).await?,
        set(&[
            ("create", "resell"),
            ("create", "cust1"),
            ("create", "one.example"),
            ("create", "reseller.example"),
            ("placement.warning", "one.example"),
        ])
    );
    assert_eq!(store.events(Scope::All, None, 1000).await?.len(), 10);
    Ok(())
}

async fn reseller_change_moves_objects(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let t = tenants(&store).await?;
    let (r, c2) = (t.r.meta.id, t.c2.meta.id);
    assert!(store
        .get::<Domain>(Scope::Reseller(r), t.d2.meta.id)
        .await?
        .is_none());

    let mut tx = store.begin(system()).await?;
    let mut data = t.c2.data.clone();
    data.reseller = Some(r);
    let updated = tx.update(c2, "cust2", data).await?;
    assert_eq!(updated.meta.reseller, Some(r));
    // A domain created later in the same transaction picks up the new reseller.
    let d3 = tx.create(domain("three.example", c2)?).await?;
    assert_eq!(d3.meta.reseller, Some(r));
    tx.commit().await?;

    let d2 = store
        .get::<Domain>(Scope::Reseller(r), t.d2.meta.id)
        .await?
        .context("moved to R")?;
    assert_eq!(d2.meta.reseller, Some(r));
    assert_eq!(store.count(Kind::Account, Scope::Reseller(r)).await?, 3);
    assert_eq!(store.count(Kind::Domain, Scope::Reseller(r)).await?, 4);
    Ok(())
}

async fn domains_under_and_reassign(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let r = {
        let mut tx = store.begin(system()).await?;
        let r = tx
            .create(new(
                "res",
                None,
                None,
                account("res", AccountKind::Reseller, None)?,
            ))
            .await?;
        tx.commit().await?;
        r
    };
    let a = customer(&store, "ca", None).await?;
    let b = customer(&store, "cb", Some(r.meta.id)).await?;
    let d1 = add_domain(&store, "x.example", a.meta.id).await?;
    let d2 = add_domain(&store, "www.x.example", a.meta.id).await?;
    add_domain(&store, "xx.example", a.meta.id).await?;
    let m = {
        let mut tx = store.begin(system()).await?;
        let m = tx.create(mailbox(&d2, "info")?).await?;
        tx.commit().await?;
        m
    };
    // The registrable domain and names below it; not `xx.example`, not `example`.
    let found = store.domains_under("x.example").await?;
    let names: Vec<&str> = found.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ["x.example", "www.x.example"]);
    assert!(found.iter().all(|(_, _, o)| *o == Some(a.meta.id)));
    assert!(store.domains_under("example").await?.is_empty());
    assert_eq!(store.domains_under("xx.example").await?.len(), 1);
    // The index survives updates (which replace an object's keys) and is rebuilt
    // at open when missing (a store written before it existed).
    {
        let mut tx = store.begin(system()).await?;
        let d = tx.get::<Domain>(d1.meta.id).await?.context("d1")?;
        tx.update(d.meta.id, &d.meta.name, d.data).await?;
        tx.commit().await?;
    }
    assert_eq!(store.domains_under("x.example").await?.len(), 2);
    env.raw("DELETE FROM object_keys WHERE ns = 'registrable'".to_owned())
        .await?;
    assert!(store.domains_under("x.example").await?.is_empty());
    store.close().await;
    let store = env.open().await?;
    assert_eq!(store.domains_under("x.example").await?.len(), 2);

    let mut tx = store.begin(system()).await?;
    assert_eq!(tx.domains_under("x.example").await?.len(), 2);
    tx.reassign(Kind::Domain, d2.meta.id, b.meta.id, Some(b.meta.id))
        .await?;
    expect_not_found(
        tx.reassign(Kind::Domain, 999_999, b.meta.id, None).await,
        "domain",
        999_999,
    )?;
    tx.commit().await?;
    // The domain and its mailbox moved (owner, reseller, parent); d1 did not.
    let moved = store
        .get::<Domain>(Scope::Customer(b.meta.id), d2.meta.id)
        .await?
        .context("moved to B")?;
    assert_eq!(moved.meta.parent, Some(b.meta.id));
    assert_eq!(moved.meta.reseller, Some(r.meta.id));
    let mb = store
        .get::<Mailbox>(Scope::Reseller(r.meta.id), m.meta.id)
        .await?
        .context("mailbox moved")?;
    assert_eq!(mb.meta.owner, Some(b.meta.id));
    assert_eq!(mb.meta.parent, Some(d2.meta.id));
    assert!(store
        .get::<Mailbox>(Scope::Customer(a.meta.id), m.meta.id)
        .await?
        .is_none());
    assert!(store
        .get::<Domain>(Scope::Customer(a.meta.id), d1.meta.id)
        .await?
        .is_some());
    let events = store.events(Scope::All, None, 1000).await?;
    assert_eq!(
        events.iter().filter(|e| e.action == "transfer").count(),
        2,
        "one transfer event per moved object"
    );
    Ok(())
}

async fn name_and_key_conflicts(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let d = add_domain(&store, "a.com", c.meta.id).await?;

    let mut tx = store.begin(system()).await?;
    expect_conflict(
        tx.create(domain("a.com", c.meta.id)?).await,
        "domain",
        "a.com",
    )?;
    let mb = tx.create(mailbox(&d, "info")?).await?;
    // Same name in another kind is fine; the shared key is not.
    expect_conflict(
        tx.create(alias(&d, "info", "x@elsewhere.net")?).await,
        "mail_address",
        "info@a.com",
    )?;
    assert_eq!(
        tx.find_key("mail_address", "info@a.com").await?,
        Some((Kind::Mailbox, mb.meta.id))
    );
    // The transaction is still usable after a conflict (also on PostgreSQL).
    let al = tx.create(alias(&d, "sales", "x@elsewhere.net")?).await?;
    tx.commit().await?;

    assert_eq!(
        store.find_key("mail_address", "info@a.com").await?,
        Some((Kind::Mailbox, mb.meta.id))
    );
    assert_eq!(
        store.find_key("mail_address", "sales@a.com").await?,
        Some((Kind::MailAlias, al.meta.id))
    );
    assert_eq!(store.count(Kind::Domain, Scope::All).await?, 1);
    assert_eq!(store.count(Kind::MailAlias, Scope::All).await?, 1);

    // Across transactions too, and a mailbox cannot take an alias's address.
    let mut tx = store.begin(system()).await?;
    expect_conflict(
        tx.create(mailbox(&d, "sales")?).await,
        "mail_address",
        "sales@a.com",
    )?;
    drop(tx);

    // A key listed twice by one object is claimed once.
    let mut tx = store.begin(system()).await?;
    let mut s = site(&d, &["a.com", "www.a.com"])?;
    s.data.aliases.push(DomainName::new("a.com")?);
    let s = tx.create(s).await?;
    tx.commit().await?;
    assert_eq!(
        store.find_key("hostname", "a.com").await?,
        Some((Kind::Site, s.meta.id))
    );
    Ok(())
}

async fn update_replaces_keys(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let a = add_domain(&store, "a.com", c.meta.id).await?;
    let b = add_domain(&store, "b.com", c.meta.id).await?;

    let mut tx = store.begin(system()).await?;
    let s = tx.create(site(&a, &["a.com", "www.a.com"])?).await?;
    let sb = tx.create(site(&b, &["b.com"])?).await?;
    let created_rev = tx.commit().await?;

    let mut tx = store.begin(system()).await?;
    let rev = tx.revision();
    let mut data = s.data.clone();
    data.aliases = vec![DomainName::new("shop.a.com")?];
    data.php = false;
    let u = tx.update(s.meta.id, "a.com", data.clone()).await?;
    assert_eq!((u.meta.created_rev, u.meta.updated_rev), (created_rev, rev));
    assert_eq!(u.meta.created_at, s.meta.created_at);
    assert!(u.meta.updated_at >= s.meta.updated_at);
    assert_eq!(u.data, data);
    // Inside the transaction the old key is already free.
    assert_eq!(tx.find_key("hostname", "www.a.com").await?, None);
    tx.commit().await?;

    assert_eq!(
        store.get::<Site>(Scope::All, s.meta.id).await?.as_ref(),
        Some(&u)
    );
    assert_eq!(store.find_key("hostname", "www.a.com").await?, None);
    assert_eq!(
        store.find_key("hostname", "shop.a.com").await?,
        Some((Kind::Site, s.meta.id))
    );
    assert_eq!(
        store.find_key("hostname", "a.com").await?,
        Some((Kind::Site, s.meta.id))
    );

    let mut tx = store.begin(system()).await?;
    // Keys and names held by others conflict; a missing object is NotFound.
    let mut taken = sb.data.clone();
    taken.aliases = vec![DomainName::new("shop.a.com")?];
    expect_conflict(
        tx.update(sb.meta.id, "b.com", taken).await,
        "hostname",
        "shop.a.com",
    )?;
    expect_conflict(
        tx.update(sb.meta.id, "a.com", sb.data.clone()).await,
        "site",
        "a.com",
    )?;
    expect_not_found(
        tx.update(999_999, "zzz", sb.data.clone()).await,
        "site",
        999_999,
    )?;
    expect_not_found(
        tx.update(a.meta.id, "a.com", sb.data.clone()).await,
        "site",
        a.meta.id,
    )?;
    // The freed key can be claimed by another object; renames work.
    let mut freed = sb.data.clone();
    freed.aliases = vec![DomainName::new("www.a.com")?];
    let sb2 = tx.update(sb.meta.id, "b-site", freed).await?;
    assert_eq!(sb2.meta.name, "b-site");
    tx.commit().await?;
    assert_eq!(
        store.find_key("hostname", "www.a.com").await?,
        Some((Kind::Site, sb.meta.id))
    );
    assert_eq!(store.find_key("hostname", "b.com").await?, None);
    assert!(store
        .get_by_name::<Site>(Scope::All, "b-site")
        .await?
        .is_some());
    assert!(store
        .get_by_name::<Site>(Scope::All, "b.com")
        .await?
        .is_none());
    Ok(())
}

async fn cascade_delete(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let a = add_domain(&store, "a.com", c.meta.id).await?;
    let b = add_domain(&store, "b.com", c.meta.id).await?;
    let mut tx = store.begin(system()).await?;
    tx.create(mailbox(&a, "info")?).await?;
    tx.create(alias(&a, "sales", "x@elsewhere.net")?).await?;
    tx.create(site(&a, &["a.com", "www.a.com"])?).await?;
    let kept = tx.create(mailbox(&b, "info")?).await?;
    tx.commit().await?;

    let mut tx = store
        .begin(Actor {
            account: Some(c.meta.id),
            label: "acme".into(),
        })
        .await?;
    let rev = tx.revision();
    tx.delete(Kind::Domain, a.meta.id).await?;
    expect_not_found(
        tx.delete(Kind::Domain, a.meta.id).await,
        "domain",
        a.meta.id,
    )?;
    // The kind must match.
    expect_not_found(
        tx.delete(Kind::Mailbox, b.meta.id).await,
        "mailbox",
        b.meta.id,
    )?;
    tx.commit().await?;

    assert!(store.get::<Domain>(Scope::All, a.meta.id).await?.is_none());
    assert_eq!(ids(&store.all::<Mailbox>().await?), vec![kept.meta.id]);
    assert_eq!(store.count(Kind::MailAlias, Scope::All).await?, 0);
    assert_eq!(store.count(Kind::Site, Scope::All).await?, 0);
    for (ns, k) in [
        ("mail_address", "info@a.com"),
        ("mail_address", "sales@a.com"),
        ("hostname", "www.a.com"),
    ] {
        assert_eq!(store.find_key(ns, k).await?, None, "{ns} {k}");
    }
    assert_eq!(
        store.find_key("mail_address", "info@b.com").await?,
        Some((Kind::Mailbox, kept.meta.id))
    );
    // The freed address can be claimed again.
    let a2 = add_domain(&store, "a.com", c.meta.id).await?;
    let mut tx = store.begin(system()).await?;
    tx.create(alias(&a2, "info", "x@elsewhere.net")?).await?;
    tx.commit().await?;

    let ev = store.events(Scope::Customer(c.meta.id), None, 1000).await?;
    let del: Vec<_> = ev.iter().filter(|e| e.action == "delete").collect();
    assert_eq!(del.len(), 1, "{del:?}");
    let del = del[0];
    assert_eq!(
        (
            del.kind.as_str(),
            del.object_id,
            del.object_name.as_str(),
            del.owner,
            del.revision
        ),
        ("domain", Some(a.meta.id), "a.com", Some(c.meta.id), rev)
    );
    assert_eq!(
        (del.actor, del.actor_label.as_str()),
        (Some(c.meta.id), "acme")
    );
    Ok(())
}

/// The feed of `store` since `rev` (never too far behind in these tests).
async fn feed_since(store: &Store, rev: i64) -> Result<store::Feed> {
    match store.changes_since(rev).await? {
        store::Changes::Feed(f) => Ok(f),
        other => bail!("expected a feed since {rev}, got {other:?}"),
    }
}

/// (kind, id) of objects.
type KindIds = Vec<(Kind, Id)>;

/// (kind, id) of a feed's changed objects and of its tombstones.
fn feed_ids(f: &store::Feed) -> (KindIds, KindIds) {
    (
        f.changed.iter().map(|o| (o.kind, o.meta.id)).collect(),
        f.deleted.iter().map(|t| (t.kind, t.id)).collect(),
    )
}

async fn change_feed(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let a = add_domain(&store, "a.com", c.meta.id).await?;
    // From 0: everything, no tombstones, at the current revision.
    let all = feed_since(&store, 0).await?;
    ensure!(all.revision == store.revision().await?);
    let (changed, deleted) = feed_ids(&all);
    ensure!(changed == vec![(Kind::Account, c.meta.id), (Kind::Domain, a.meta.id)]);
    ensure!(deleted.is_empty());
    let typed: Stored<Domain> = all.changed[1].parse()?;
    ensure!(typed.data.name.as_str() == "a.com" && typed.meta == a.meta);
    ensure!(
        all.changed[0].parse::<Domain>().is_err(),
        "kinds are checked"
    );

    // Creates and updates after a revision.
    let r0 = all.revision;
    let mut tx = store.begin(system()).await?;
    let mb = tx.create(mailbox(&a, "info")?).await?;
    let al = tx.create(alias(&a, "sales", "x@elsewhere.net")?).await?;
    let st = tx.create(site(&a, &["a.com", "www.a.com"])?).await?;
    tx.commit().await?;
    let f = feed_since(&store, r0).await?;
    let (changed, deleted) = feed_ids(&f);
    ensure!(
        changed
            == vec![
                (Kind::Mailbox, mb.meta.id),
                (Kind::MailAlias, al.meta.id),
                (Kind::Site, st.meta.id)
            ],
        "{changed:?}"
    );
    ensure!(deleted.is_empty());
    let r1 = f.revision;
    ensure!(r1 > r0);
    ensure!(feed_since(&store, r1).await?.changed.is_empty());

    let mut tx = store.begin(system()).await?;
    let mut data = a.data.clone();
    data.placements.insert(Role::Web, 7);
    tx.update(a.meta.id, "a.com", data).await?;
    tx.commit().await?;
    let f = feed_since(&store, r1).await?;
    ensure!(feed_ids(&f).0 == vec![(Kind::Domain, a.meta.id)]);
    let d: Stored<Domain> = f.changed[0].parse()?;
    ensure!(d.data.placements.get(&Role::Web) == Some(&7));
    let r2 = f.revision;

    // A delete cascades: the domain and its children leave tombstones at the
    // deleting revision; a rolled-back delete leaves none.
    let mut tx = store.begin(system()).await?;
    tx.delete(Kind::Mailbox, mb.meta.id).await?;
    drop(tx);
    ensure!(feed_since(&store, r2).await?.deleted.is_empty());
    let mut tx = store.begin(system()).await?;
    let del_rev = tx.revision();
    tx.delete(Kind::Domain, a.meta.id).await?;
    tx.commit().await?;
    let f = feed_since(&store, r2).await?;
    let (changed, mut deleted) = feed_ids(&f);
    ensure!(changed.is_empty(), "{changed:?}");
    deleted.sort_by_key(|(_, id)| *id);
    let mut want = vec![
        (Kind::Domain, a.meta.id),
        (Kind::Mailbox, mb.meta.id),
        (Kind::MailAlias, al.meta.id),
        (Kind::Site, st.meta.id),
    ];
    want.sort_by_key(|(_, id)| *id);
    ensure!(deleted == want, "{deleted:?}");
    ensure!(f.deleted.iter().all(|t| t.rev == del_rev));
    // An object created and deleted after the reader's revision is only a tombstone.
    let f = feed_since(&store, r1).await?;
    ensure!(f.changed.is_empty() && f.deleted.len() == 4);

    // Pruning: nothing younger than the cutoff goes; after pruning everything,
    // a reader from before the pruned revision must reload, one at it need not.
    ensure!(
        store
            .prune_tombstones(time::OffsetDateTime::now_utc() - time::Duration::hours(24))
            .await?
            == 0
    );
    ensure!(matches!(
        store.changes_since(r2).await?,
        store::Changes::Feed(_)
    ));
    ensure!(
        store
            .prune_tombstones(time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
            .await?
            == 4
    );
    ensure!(
        store.changes_since(r2).await? == store::Changes::TooFarBehind { pruned: del_rev },
        "behind the horizon"
    );
    ensure!(feed_since(&store, del_rev).await?.deleted.is_empty());
    ensure!(
        feed_since(&store, 0).await?.changed.len() == 1,
        "only the account is left"
    );
    Ok(())
}

async fn revision_and_rollback(env: &Env) -> Result<()> {
    let store = env.open().await?;
    assert_eq!(store.revision().await?, 0);

    // An empty transaction still counts once.
    let tx = store.begin(system()).await?;
    assert_eq!(tx.revision(), 1);
    assert_eq!(tx.commit().await?, 1);
    assert_eq!(store.revision().await?, 1);

    let c = customer(&store, "acme", None).await?;
    assert_eq!((c.meta.created_rev, store.revision().await?), (2, 2));

    // Dropped transaction: no rows, no events, no revision.
    let events_before = store.events(Scope::All, None, 1000).await?;
    let mut tx = store.begin(system()).await?;
    assert_eq!(tx.revision(), 3);
    let d = tx.create(domain("gone.example", c.meta.id)?).await?;
    tx.create(mailbox(&d, "info")?).await?;
    tx.event("custom", Kind::Domain, None, None, serde_json::json!({}))
        .await?;
    assert!(
        tx.get::<Domain>(d.meta.id).await?.is_some(),
        "a transaction sees its own writes"
    );
    assert!(tx.get_by_name::<Domain>("gone.example").await?.is_some());
    assert!(
        store.get::<Domain>(Scope::All, d.meta.id).await?.is_none(),
        "others do not"
    );
    drop(tx);
    assert_eq!(store.revision().await?, 2);
    assert!(store
        .get_by_name::<Domain>(Scope::All, "gone.example")
        .await?
        .is_none());
    assert_eq!(store.count(Kind::Mailbox, Scope::All).await?, 0);
    assert_eq!(
        store.find_key("mail_address", "info@gone.example").await?,
        None
    );
    assert_eq!(store.events(Scope::All, None, 1000).await?, events_before);

    // The next transaction takes the next revision; several changes share it.
    let mut tx = store.begin(system()).await?;
    assert_eq!(tx.revision(), 3);
    let d = tx.create(domain("kept.example", c.meta.id)?).await?;
    let m = tx.create(mailbox(&d, "info")?).await?;
    assert_eq!((d.meta.created_rev, m.meta.created_rev), (3, 3));
    assert_eq!(tx.commit().await?, 3);
    assert_eq!(store.revision().await?, 3);
    let ev = store
        .events(Scope::All, events_before.last().map(|e| e.id), 1000)
        .await?;
    assert_eq!(
        ev.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![3, 3]
    );
    Ok(())
}

async fn events_record_changes(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let mut tx = store.begin(system()).await?;
    let admin = tx
        .create(new(
            "alice",
            None,
            None,
            account("alice", AccountKind::Admin, None)?,
        ))
        .await?;
    tx.commit().await?;
    let c = customer(&store, "acme", None).await?;

    let alice = Actor {
        account: Some(admin.meta.id),
        label: "alice".into(),
    };
    let mut tx = store.begin(alice.clone()).await?;
    let d = tx.create(domain("a.com", c.meta.id)?).await?;
    let mut data = d.data.clone();
    data.placements.insert(Role::Web, 7);
    tx.update(d.meta.id, "a.com", data).await?;
    tx.event(
        "placement.warning",
        Kind::Domain,
        Some((d.meta.id, "a.com")),
        Some(c.meta.id),
        serde_json::json!({"warning": "only one country"}),
    )
    .await?;
    tx.delete(Kind::Domain, d.meta.id).await?;
    let rev = tx.commit().await?;

    let all = store.events(Scope::All, None, 0).await?;
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "id order");
    let first = &all[0];
    assert_eq!(
        (
            first.action.as_str(),
            first.kind.as_str(),
            first.object_name.as_str(),
            first.actor,
            first.actor_label.as_str()
        ),
        ("create", "account", "alice", None, "system")
    );
    assert_eq!(first.owner, None);
    let tail = &all[2..];
    assert_eq!(
        tail.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["create", "update", "placement.warning", "delete"]
    );
    for e in tail {
        assert_eq!(
            (e.actor, e.actor_label.as_str()),
            (Some(admin.meta.id), "alice")
        );
        assert_eq!(
            (e.kind.as_str(), e.object_id, e.object_name.as_str()),
            ("domain", Some(d.meta.id), "a.com")
        );
        assert_eq!((e.owner, e.revision), (Some(c.meta.id), rev));
        assert!((time::OffsetDateTime::now_utc() - e.at).abs() < time::Duration::minutes(1));
    }
    assert_eq!(tail[0].detail, serde_json::json!({}));
    assert_eq!(
        tail[2].detail,
        serde_json::json!({"warning": "only one country"})
    );

    // Cursor and limit.
    let page = store.events(Scope::All, Some(all[1].id), 2).await?;
    assert_eq!(page, all[2..4].to_vec());
    assert!(store
        .events(Scope::All, all.last().map(|e| e.id), 10)
        .await?
        .is_empty());
    Ok(())
}

async fn concurrent_writers(env: &Env) -> Result<()> {
    const TASKS: usize = 6;
    const PER_TASK: usize = 15;
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let start = store.revision().await?;

    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let owner = c.meta.id;
        handles.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..PER_TASK {
                let mut tx = store
                    .begin(Actor {
                        account: None,
                        label: format!("task{t}"),
                    })
                    .await?;
                let d = tx
                    .create(domain(&format!("t{t}-{i}.example"), owner)?)
                    .await?;
                tx.create(site(&d, &[&d.meta.name])?).await?;
                // Interleave reads with the writers.
                store.count(Kind::Domain, Scope::All).await?;
                revs.push(tx.commit().await?);
            }
            Ok::<_, anyhow::Error>(revs)
        }));
    }
    let mut revs = Vec::new();
    for h in handles {
        revs.extend(h.await??);
    }
    revs.sort_unstable();
    let want: Vec<i64> = (start + 1..=start + (TASKS * PER_TASK) as i64).collect();
    assert_eq!(revs, want, "distinct, gap-free revisions");
    assert_eq!(store.revision().await?, start + (TASKS * PER_TASK) as i64);
    assert_eq!(
        store.count(Kind::Domain, Scope::All).await?,
        (TASKS * PER_TASK) as i64
    );
    assert_eq!(
        store.count(Kind::Site, Scope::All).await?,
        (TASKS * PER_TASK) as i64
    );
    assert_eq!(
        store.events(Scope::All, None, 1000).await?.len(),
        1 + 2 * TASKS * PER_TASK
    );
    Ok(())
}

/// Concurrent writers share database transactions (group commit); one writer's
/// failure or rollback must not touch the others' work in the same batch.
async fn group_commit_isolates_failures(env: &Env) -> Result<()> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 24;
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    add_domain(&store, "taken.example", c.meta.id).await?;
    let start = store.revision().await?;

    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let owner = c.meta.id;
        handles.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for i in 0..PER_TASK {
                let name = format!("g{t}-{i}.example");
                let mut tx = store
                    .begin(Actor {
                        account: None,
                        label: format!("task{t}"),
                    })
                    .await?;
                let d = tx.create(domain(&name, owner)?).await?;
                match i % 4 {
                    // A name conflict after a successful insert: the caller drops
                    // the transaction.
                    0 => {
                        let r = tx.create(domain("taken.example", owner)?).await;
                        ensure!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
                        drop(tx);
                    }
                    // A database error (foreign key) inside the transaction.
                    1 => {
                        let r = tx
                            .create(new(
                                &format!("orphan-{t}-{i}"),
                                Some(owner),
                                Some(999_999_999),
                                Mailbox {
                                    domain: 999_999_999,
                                    local_part: LocalPart::new("x")?,
                                    password_hash: String::new(),
                                    quota_mb: 0,
                                    display_name: String::new(),
                                    enabled: true,
                                },
                            ))
                            .await;
                        ensure!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
                        drop(tx);
                    }
                    // Plain commits, one with a second object.
                    2 => {
                        tx.create(site(&d, &[&d.meta.name])?).await?;
                        committed.push((name, tx.commit().await?));
                    }
                    _ => committed.push((name, tx.commit().await?)),
                }
            }
            Ok::<_, anyhow::Error>(committed)
        }));
    }
    let mut committed = Vec::new();
    for h in handles {
        committed.extend(h.await??);
    }
    let want = TASKS * PER_TASK / 2;
    ensure!(committed.len() == want, "{} commits", committed.len());
    let mut revs: Vec<i64> = committed.iter().map(|(_, r)| *r).collect();
    revs.sort_unstable();
    let gap_free: Vec<i64> = (start + 1..=start + want as i64).collect();
    assert_eq!(
        revs, gap_free,
        "rolled-back writers leave no revision behind"
    );
    assert_eq!(store.revision().await?, start + want as i64);
    // Exactly the committed domains exist (plus taken.example).
    let names: BTreeSet<String> = store
        .all::<Domain>()
        .await?
        .into_iter()
        .map(|d| d.meta.name)
        .collect();
    let mut expect: BTreeSet<String> = committed.into_iter().map(|(n, _)| n).collect();
    expect.insert("taken.example".into());
    assert_eq!(names, expect);
    assert_eq!(
        store.count(Kind::Site, Scope::All).await?,
        (TASKS * PER_TASK / 4) as i64
    );
    assert_eq!(store.count(Kind::Mailbox, Scope::All).await?, 0);
    // One event per committed object, none for rolled-back ones.
    let events = store.events(Scope::All, None, 1000).await?;
    let after: Vec<_> = events.iter().filter(|e| e.revision > start).collect();
    assert_eq!(after.len(), want + TASKS * PER_TASK / 4);
    Ok(())
}

async fn data_survives_reopen(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let d = add_domain(&store, "a.com", c.meta.id).await?;
    let mut tx = store.begin(system()).await?;
    let m = tx.create(mailbox(&d, "info")?).await?;
    tx.commit().await?;
    let rev = store.revision().await?;
    store.close().await;
    drop(store);

    let store = env.open().await?;
    assert_eq!(store.revision().await?, rev);
    assert_eq!(
        store.get::<Domain>(Scope::All, d.meta.id).await?.as_ref(),
        Some(&d)
    );
    assert_eq!(
        store
            .get::<Mailbox>(Scope::Customer(c.meta.id), m.meta.id)
            .await?
            .as_ref(),
        Some(&m)
    );
    assert_eq!(
        store.find_key("mail_address", "info@a.com").await?,
        Some((Kind::Mailbox, m.meta.id))
    );
    assert_eq!(store.events(Scope::All, None, 100).await?.len(), 3);
    // Ids are never reused, even after the newest row is deleted and the store reopened.
    let mut tx = store.begin(system()).await?;
    tx.delete(Kind::Mailbox, m.meta.id).await?;
    tx.commit().await?;
    store.close().await;
    let store = env.open().await?;
    let mut tx = store.begin(system()).await?;
    let m2 = tx.create(mailbox(&d, "info")?).await?;
    tx.commit().await?;
    assert!(m2.meta.id > m.meta.id);
    Ok(())
}

async fn missing_owner_or_parent(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let mut tx = store.begin(system()).await?;
    expect_not_found(
        tx.create(domain("a.com", 424_242)?).await,
        "account",
        424_242,
    )?;
    drop(tx);
    // A domain is not an account: it cannot own things.
    let d = add_domain(&store, "a.com", c.meta.id).await?;
    let mut tx = store.begin(system()).await?;
    expect_not_found(
        tx.create(domain("b.com", d.meta.id)?).await,
        "account",
        d.meta.id,
    )?;
    drop(tx);
    let mut tx = store.begin(system()).await?;
    let mut m = mailbox(&d, "info")?;
    m.parent = Some(515_151);
    expect_not_found(tx.create(m).await, "parent", 515_151)?;
    drop(tx);
    assert_eq!(store.count(Kind::Mailbox, Scope::All).await?, 0);
    assert_eq!(store.count(Kind::Domain, Scope::All).await?, 1);
    Ok(())
}

async fn corrupt_document(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let d = add_domain(&store, "a.com", c.meta.id).await?;
    env.raw(format!(
        "UPDATE objects SET data = '{{\"name\": \"not a domain!\"}}' WHERE id = {}",
        d.meta.id
    ))
    .await?;
    match store.get::<Domain>(Scope::All, d.meta.id).await {
        Err(StoreError::Corrupt {
            kind: "domain", id, ..
        }) if id == d.meta.id => {}
        other => bail!("expected Corrupt, got {other:?}"),
    }
    ensure!(matches!(
        store.all::<Domain>().await,
        Err(StoreError::Corrupt { .. })
    ));
    // Other kinds are unaffected.
    assert!(store.get::<Account>(Scope::All, c.meta.id).await?.is_some());
    Ok(())
}

// ---------------------------------------------------------------------------------
// SQLite specifics
// ---------------------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn sqlite_file_is_private_and_urls_work() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("a").join("b").join("store.db");
    let store = Store::open_url(&format!("sqlite://{}", path.display())).await?;
    assert_eq!(store.backend(), BackendKind::Sqlite);
    customer(&store, "acme", None).await?;
    for p in [
        path.clone(),
        PathBuf::from(format!("{}-wal", path.display())),
    ] {
        let mode = std::fs::metadata(&p)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", p.display());
    }
    store.close().await;

    // `sqlite:PATH` opens the same file.
    let store = Store::open_url(&format!("sqlite:{}", path.display())).await?;
    assert_eq!(store.revision().await?, 1);
    assert_eq!(store.count(Kind::Account, Scope::All).await?, 1);
    // The database is in WAL mode with fsync on commit.
    let url = format!("sqlite://{}", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await?;
    assert_eq!(mode, "wal");
    c.close().await?;

    assert!(matches!(
        Store::open_url("mysql://x").await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        Store::open_url("sqlite:").await,
        Err(StoreError::Backend(_))
    ));
    Ok(())
}

#[tokio::test]
async fn postgres_url_and_backend() -> Result<()> {
    let Some(env) = Env::postgres().await? else {
        return Ok(());
    };
    let Env::Postgres(db) = &env else {
        bail!("not postgres")
    };
    let url = db.url().replacen("postgres://", "postgresql://", 1);
    let store = Store::open_url(&url).await?;
    assert_eq!(store.backend(), BackendKind::Postgres);
    // Opening twice (two controllers) runs the migrations once.
    let again = Store::open_postgres(&db.url()).await?;
    assert_eq!(again.revision().await?, 0);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Benchmarks (ignored): `cargo test -p store --release --test suite -- --ignored --nocapture`
// ---------------------------------------------------------------------------------

/// Domain creations per second: one transaction per domain creating the domain and
/// its site (2 objects, 1 key, 2 events), sequentially and from 4 tasks.
/// Writers that check `count_owned` before `create` in one `Tx` never exceed the
/// limit they check, however many run at once (what the controller's plan limits
/// rely on).
async fn counted_creates_never_exceed_a_limit(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let alice = customer(&store, "alice", None).await?;
    let bob = customer(&store, "bob", None).await?;
    add_domain(&store, "bob.example", bob.meta.id).await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let owner = alice.meta.id;
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin(system()).await?;
            if tx.count_owned(Kind::Domain, owner).await? >= 3 {
                return Ok::<bool, anyhow::Error>(false);
            }
            tx.create(domain(&format!("d{i}.example"), owner)?).await?;
            tx.commit().await?;
            Ok(true)
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await??);
    }
    assert_eq!(created, 3);
    let mut tx = store.begin(system()).await?;
    assert_eq!(tx.count_owned(Kind::Domain, alice.meta.id).await?, 3);
    assert_eq!(tx.count_owned(Kind::Domain, bob.meta.id).await?, 1);
    let owned = tx.owned::<Domain>(alice.meta.id).await?;
    assert_eq!(owned.len(), 3);
    assert!(owned.windows(2).all(|w| w[0].meta.id < w[1].meta.id));
    Ok(())
}

async fn bench_creations(env: &Env) -> Result<()> {
    const N: usize = 2000;
    let store = env.open().await?;
    let c = customer(&store, "acme", None).await?;
    let started = Instant::now();
    for i in 0..N {
        let mut tx = store.begin(system()).await?;
        let d = tx
            .create(domain(&format!("seq{i}.example"), c.meta.id)?)
            .await?;
        tx.create(site(&d, &[&d.meta.name])?).await?;
        tx.commit().await?;
    }
    let seq = N as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        let owner = c.meta.id;
        handles.push(tokio::spawn(async move {
            for i in 0..N / 4 {
                let mut tx = store.begin(system()).await?;
                let d = tx
                    .create(domain(&format!("par{t}-{i}.example"), owner)?)
                    .await?;
                tx.create(site(&d, &[&d.meta.name])?).await?;
                tx.commit().await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let par = N as f64 / started.elapsed().as_secs_f64();
    assert_eq!(store.count(Kind::Domain, Scope::All).await?, 2 * N as i64);
    eprintln!(
        "{:?}: {seq:.0} domain creations/s sequential, {par:.0}/s from 4 tasks",
        store.backend()
    );
    Ok(())
}

/// Listing pages of 100 out of 10,000 rows, in each scope.
async fn bench_listing(env: &Env) -> Result<()> {
    const N: usize = 10_000;
    let store = env.open().await?;
    let mut tx = store.begin(system()).await?;
    let r = tx
        .create(new(
            "resell",
            None,
            None,
            account("resell", AccountKind::Reseller, None)?,
        ))
        .await?;
    let mut owners = Vec::new();
    for i in 0..10 {
        let reseller = (i % 2 == 0).then_some(r.meta.id);
        let name = format!("cust{i}");
        owners.push(
            tx.create(new(
                &name,
                None,
                None,
                account(&name, AccountKind::Customer, reseller)?,
            ))
            .await?
            .meta
            .id,
        );
    }
    tx.commit().await?;
    for chunk in 0..N / 500 {
        let mut tx = store.begin(system()).await?;
        for i in 0..500 {
            let n = chunk * 500 + i;
            tx.create(domain(&format!("l{n}.example"), owners[n % owners.len()])?)
                .await?;
        }
        tx.commit().await?;
    }
    for scope in [
        Scope::All,
        Scope::Reseller(r.meta.id),
        Scope::Customer(owners[3]),
    ] {
        let started = Instant::now();
        let (mut pages, mut rows) = (0, 0);
        let mut q = ListQuery::new(scope, 100);
        loop {
            let page = store.list::<Domain>(&q).await?;
            if page.is_empty() {
                break;
            }
            pages += 1;
            rows += page.len();
            q.after = page.last().map(|p| p.meta.id);
        }
        let per_page = started.elapsed() / pages;
        eprintln!(
            "{:?} {scope:?}: {rows} rows in {pages} pages of 100, {per_page:?} per page",
            store.backend()
        );
        let want = match scope {
            Scope::All => N,
            Scope::Reseller(_) => N / 2,
            Scope::Customer(_) => N / 10,
        };
        assert_eq!(rows, want);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_sqlite() -> Result<()> {
    bench_creations(&Env::sqlite()?).await?;
    bench_listing(&Env::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_postgres() -> Result<()> {
    let Some(env) = Env::postgres().await? else {
        return Ok(());
    };
    bench_creations(&env).await?;
    let Some(env) = Env::postgres().await? else {
        return Ok(());
    };
    bench_listing(&env).await
}
