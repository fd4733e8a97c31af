//! Every server's desired config with its own revision, and the task that keeps
//! them current.
//!
//! The builder task ([`run`]) keeps the builder's copy of the store
//! ([`Incremental`]) and, after every committed change ([`ChangeNotifier`]) and
//! every `agents.resync_interval_ms` (changes made by another controller on the same
//! PostgreSQL), applies the store's change feed since its last revision
//! ([`store::Store::changes_since`]) and rebuilds only the servers the changed
//! objects and inputs affect ([`crate::builder::affected`]). Each rebuilt config is
//! compared with the previous one by content hash; only servers whose config
//! changed get a new revision — the global store revision of the build, or one more
//! than their previous revision if that is higher — so a change reaches only the
//! servers it affects, and a server's revision only grows. Key material is not made
//! here (see [`crate::keys::run`]): a build never waits on signing.
//!
//! Zone serials ([`crate::zones::ZoneSerials`]) are kept here too, next to the
//! configs that carry the zones, and journaled to `<data_dir>/zone-serials.log`
//! (one `serial hash origin` line per change, fsynced before the build is handed
//! to any agent; compacted at start), so a restarted controller continues every
//! zone's serial: secondaries only follow serials that grow.
//!
//! Blocking queries ([`ConfigHub::wait`]) wait on a generation counter bumped after
//! each build that changed something.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use model::Id;
use proto::agent_v1::{DesiredConfig, CONFIG_FORMAT};
use store::{Changes, Feed, Store, StoreError};
use tokio::sync::watch;

use crate::builder::{build_all, Built, Dirty, Incremental, World};
use crate::health::HealthMonitor;
use crate::loads::SiteLoads;
use crate::zones::ZoneSerials;

/// One server's current config.
#[derive(Debug, Clone)]
struct Entry {
    doc: Arc<DesiredConfig>,
    /// The config as items, with the history deltas are answered from.
    delta: Arc<crate::delta::Tracked>,
}

#[derive(Debug, Default)]
struct Hub {
    /// Whether a first build finished.
    ready: bool,
    /// Store revision of the last build.
    built_revision: i64,
    servers: HashMap<Id, Entry>,
    /// Items and blobs shared by the servers' trackers.
    shared: crate::delta::Shared,
}

impl Hub {
    /// Log (at trace level: it walks every item) what the configs hold, to tell
    /// where the controller's memory goes at scale.
    fn log_usage(&self) {
        let web_sites: usize = self
            .servers
            .values()
            .map(|e| match &e.doc.role {
                proto::agent_v1::RoleConfig::Web(w) => w.sites.len(),
                _ => 0,
            })
            .sum();
        let (items, item_bytes, blobs, blob_bytes) = self.shared.usage();
        tracing::trace!(
            servers = self.servers.len(),
            web_sites,
            items,
            item_json_mib = item_bytes >> 20,
            blobs,
            blob_mib = blob_bytes >> 20,
            "hub usage"
        );
    }
}

/// Desired configs by server, with per-server revisions.
#[derive(Debug)]
pub struct ConfigHub {
    hub: RwLock<Hub>,
    generation: watch::Sender<u64>,
    /// Last content hash and serial of every zone; held for a whole build.
    serials: Mutex<ZoneSerials>,
    /// The serial journal, open for appending (`None`: serials are not persisted).
    journal: Mutex<Option<std::fs::File>>,
    /// The mail flush counter ([`World::mail_flush`]); starts at the controller's
    /// start time so a restart never repeats an earlier value.
    pub mail_flush: std::sync::atomic::AtomicU64,
}

impl Default for ConfigHub {
    fn default() -> Self {
        Self {
            hub: RwLock::new(Hub::default()),
            generation: watch::channel(0).0,
            serials: Mutex::new(ZoneSerials::default()),
            journal: Mutex::new(None),
            mail_flush: std::sync::atomic::AtomicU64::new(
                u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0),
            ),
        }
    }
}

/// One journal line: `serial hash-hex origin`.
fn journal_line(origin: &str, hash: &[u8; 32], serial: u32) -> String {
    let mut line = format!("{serial} ");
    for b in hash {
        line.push_str(&format!("{b:02x}"));
    }
    line.push(' ');
    line.push_str(origin);
    line.push('\n');
    line
}

/// Parse a journal line; `None` for a torn or foreign line (skipped).
fn parse_journal_line(line: &str) -> Option<(String, [u8; 32], u32)> {
    let mut parts = line.splitn(3, ' ');
    let serial = parts.next()?.parse().ok()?;
    let hex = parts.next()?;
    let origin = parts.next()?.trim();
    if hex.len() != 64 || origin.is_empty() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((origin.to_owned(), hash, serial))
}

impl ConfigHub {
    /// A hub whose zone serials persist in the journal at `path`: read (the last
    /// line of a zone wins), compacted atomically, then opened for appending.
    pub fn with_serial_journal(path: &std::path::Path) -> std::io::Result<Self> {
        let hub = Self::default();
        let mut serials = ZoneSerials::default();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (origin, hash, serial) in text.lines().filter_map(parse_journal_line) {
                    serials.restore(origin, hash, serial);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let compact: String = serials
            .entries()
            .map(|(o, h, s)| journal_line(o, h, s))
            .collect();
        durable::write_atomic(path, compact.as_bytes(), 0o600)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        *hub.serials.lock().unwrap_or_else(|p| p.into_inner()) = serials;
        *hub.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
        Ok(hub)
    }
}

impl ConfigHub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Hub> {
        self.hub.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the configs of the servers in `built`, made at store `revision` (the
    /// others keep theirs); returns the ids of the servers whose config changed (new
    /// ones included). See [`ConfigHub::apply_one`].
    pub fn apply(&self, revision: i64, built: BTreeMap<Id, Built>) -> Vec<Id> {
        let changed: Vec<Id> = built
            .into_iter()
            .filter_map(|(id, b)| self.apply_one(revision, id, b).then_some(id))
            .collect();
        self.finish(revision, !changed.is_empty());
        changed
    }

    /// Set the config of server `id` to `b`, made at store `revision`; `true` when
    /// it changed (or is new). Readers see it at once; the waiters are woken by
    /// [`ConfigHub::finish`] at the end of the build.
    ///
    /// The config is compared with the previous one element by element
    /// ([`proto::agent_delta::split_changes`]) and only the items that changed are
    /// serialized and hashed, so the work per change is proportional to the change
    /// (plus one comparison per element), not to the server's size. The replaced
    /// config is dropped here, so a build handing servers one by one holds one
    /// extra config at a time, not one per server.
    pub fn apply_one(&self, revision: i64, id: Id, b: Built) -> bool {
        let mut hub = self.hub.write().unwrap_or_else(|p| p.into_inner());
        let old = hub.servers.remove(&id);
        let changes = match &old {
            Some(o) => match proto::agent_delta::split_changes(&o.doc.role, &b.role) {
                Ok(c) if c.is_empty() && o.doc.server == b.server => None,
                Ok(c) => Some(Some(c)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot compare a desired config by items");
                    (o.doc.server != b.server || o.doc.role != b.role).then_some(None)
                }
            },
            None => Some(None),
        };
        let Some(changes) = changes else {
            if let Some(o) = old {
                hub.servers.insert(id, o);
            }
            return false;
        };
        let rev = match &old {
            Some(o) => revision.max(o.doc.revision + 1),
            None => revision.max(1),
        };
        let doc = DesiredConfig {
            format: CONFIG_FORMAT,
            revision: rev,
            server: b.server,
            role: b.role,
        };
        let delta = match (old, changes) {
            (Some(o), Some(c)) => {
                // Readers hold the tracker only while answering: a copy is rarely
                // needed.
                let t = Arc::try_unwrap(o.delta).unwrap_or_else(|t| (*t).clone());
                t.advance(&doc, c, &mut hub.shared)
            }
            (old, _) => crate::delta::Tracked::new(
                &doc,
                old.as_ref().map(|o| o.delta.as_ref()),
                &mut hub.shared,
            ),
        };
        hub.servers.insert(
            id,
            Entry {
                doc: Arc::new(doc),
                delta: Arc::new(delta),
            },
        );
        true
    }

    /// End a build made at store `revision` whose servers were handed to
    /// [`ConfigHub::apply_one`]: sweep the shared items, record the revision and
    /// wake the waiters when something `changed` (or on the first build).
    pub fn finish(&self, revision: i64, changed: bool) {
        {
            let mut hub = self.hub.write().unwrap_or_else(|p| p.into_inner());
            hub.shared.sweep();
            if changed && tracing::enabled!(tracing::Level::TRACE) {
                hub.log_usage();
            }
            hub.built_revision = revision;
            let first = !hub.ready;
            hub.ready = true;
            if !first && !changed {
                return;
            }
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Build every server's config from `world` with this hub's zone serials
    /// (held locked for the build, so concurrent builds number zones in turn).
    pub fn build(&self, world: &World, today_yyyymmdd: u32) -> BTreeMap<Id, Built> {
        let mut serials = self.serials.lock().unwrap_or_else(|p| p.into_inner());
        let built = build_all(world, &mut serials, today_yyyymmdd);
        let changes = serials.take_changes();
        if !changes.is_empty() {
            self.journal_serials(&changes);
        }
        built
    }

    /// Drop the configs of servers that no longer exist.
    pub fn remove(&self, servers: &[Id]) {
        if servers.is_empty() {
            return;
        }
        {
            let mut hub = self.hub.write().unwrap_or_else(|p| p.into_inner());
            for id in servers {
                hub.servers.remove(id);
            }
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Rebuild what `dirty` names with `builder` and this hub's zone serials
    /// (held locked for the build, so concurrent builds number zones in turn) and
    /// hand each rebuilt server to [`ConfigHub::apply_one`] as soon as it is made
    /// (one server's new config in flight at a time); changed serials are
    /// journaled before any server is built. Drops the servers that are gone.
    /// Returns how many servers were rebuilt and which ones changed (by id).
    pub fn build_and_apply(
        &self,
        builder: &mut Incremental,
        dirty: Dirty,
        today_yyyymmdd: u32,
        revision: i64,
    ) -> (usize, Vec<Id>) {
        let mut serials = self.serials.lock().unwrap_or_else(|p| p.into_inner());
        let mut rebuilt = 0;
        let mut changed = Vec::new();
        let removed = builder.build_into(
            dirty,
            &mut serials,
            today_yyyymmdd,
            &mut |serials| {
                let changes = serials.take_changes();
                if !changes.is_empty() {
                    self.journal_serials(&changes);
                }
            },
            &mut |id, b| {
                rebuilt += 1;
                if self.apply_one(revision, id, b) {
                    changed.push(id);
                }
            },
        );
        drop(serials);
        changed.sort_unstable();
        self.remove(&removed);
        self.finish(revision, !changed.is_empty());
        (rebuilt, changed)
    }

    /// Append changed serials to the journal and fsync, before the build that
    /// carries them reaches any agent. A failure is logged: serving the change
    /// matters more than remembering its serial across a restart.
    fn journal_serials(&self, changes: &[(String, [u8; 32], u32)]) {
        use std::io::Write as _;
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = journal.as_mut() else {
            return;
        };
        let text: String = changes
            .iter()
            .map(|(o, h, s)| journal_line(o, h, *s))
            .collect();
        if let Err(e) = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
        {
            tracing::error!(error = %e, "cannot journal zone serials; a restart may reuse serials");
        }
    }

    /// The current config of a server.
    pub fn get(&self, server: Id) -> Option<Arc<DesiredConfig>> {
        self.read().servers.get(&server).map(|e| Arc::clone(&e.doc))
    }

    /// The current config of a server with its items and their history (for
    /// delta answers and blobs).
    pub fn tracked(&self, server: Id) -> Option<(Arc<DesiredConfig>, Arc<crate::delta::Tracked>)> {
        self.read()
            .servers
            .get(&server)
            .map(|e| (Arc::clone(&e.doc), Arc::clone(&e.delta)))
    }

    /// The config revision of a server, if it has a config.
    pub fn revision(&self, server: Id) -> Option<i64> {
        self.read().servers.get(&server).map(|e| e.doc.revision)
    }

    /// Store revision of the last build (None before the first).
    pub fn built_revision(&self) -> Option<i64> {
        let hub = self.read();
        hub.ready.then_some(hub.built_revision)
    }

    /// The server's config as soon as its revision is greater than `after` (at once
    /// for `after <= 0`), or None after `wait` or when `stopping` turns true.
    pub async fn wait(
        &self,
        server: Id,
        after: i64,
        wait: Duration,
        mut stopping: watch::Receiver<bool>,
    ) -> Option<Arc<DesiredConfig>> {
        let mut generation = self.generation.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            generation.mark_unchanged();
            if let Some(doc) = self.get(server) {
                if after <= 0 || doc.revision > after {
                    return Some(doc);
                }
            }
            if *stopping.borrow_and_update() {
                return None;
            }
            tokio::select! {
                r = generation.changed() => if r.is_err() { return None },
                r = stopping.changed() => if r.is_err() { return None },
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }
}

/// Wakes the builder and key tasks after a committed change; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChangeNotifier(Arc<watch::Sender<u64>>);

impl Default for ChangeNotifier {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl ChangeNotifier {
    /// Tell the watchers that the store (or an input of the builds) changed.
    pub fn changed(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`ChangeNotifier::changed`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// Identity of this notifier (one per controller state), for per-controller
    /// bookkeeping such as [`crate::dkim_rsa`]'s pending keys.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

/// What the builder task needs: the store, the hub it fills, the inputs that
/// are not stored (health, configured ports and plans) and the change notifier.
#[derive(Debug, Clone)]
pub struct BuildDeps {
    /// The store (its change feed).
    pub store: Store,
    /// Where the configs go.
    pub configs: Arc<ConfigHub>,
    /// Servers' health and reported service ports.
    pub health: Arc<HealthMonitor>,
    /// Site loads to refresh after each read.
    pub site_loads: Arc<SiteLoads>,
    /// Wakes the builder.
    pub changes: ChangeNotifier,
    /// Turns true when the controller stops.
    pub stopping: watch::Receiver<bool>,
    /// `agents.resync_interval_ms`: how often the feed is read without a wake-up.
    pub resync: Duration,
    /// `databases.trash_days`.
    pub db_trash_days: u32,
    /// `files.site_versions_days` of the controller config.
    pub site_versions_days: u32,
    /// `[default_plan]`.
    pub default_plan: model::limits::Limits,
    /// `health.probe_ports`: a server's service port until it reports one.
    pub probe_ports: crate::config::ProbePorts,
}

/// The builder between passes: its world and the store revision it reflects.
#[derive(Debug, Default)]
pub struct BuildState {
    /// The incremental builder (None: load everything at the next pass).
    builder: Option<Incremental>,
    /// Store revision the world reflects.
    revision: i64,
}

/// Read the feed since `since` (everything for 0), reloading from 0 when too
/// far behind; `true` with a full read.
async fn read_feed(store: &Store, since: i64) -> Result<(Feed, bool), StoreError> {
    match store.changes_since(since).await? {
        Changes::Feed(f) => Ok((f, since <= 0)),
        Changes::TooFarBehind { pruned } => {
            tracing::info!(
                since,
                pruned,
                "change feed pruned past our revision; reloading"
            );
            match store.changes_since(0).await? {
                Changes::Feed(f) => Ok((f, true)),
                Changes::TooFarBehind { .. } => Err(StoreError::InUse(
                    "the change feed refused a full read".into(),
                )),
            }
        }
    }
}

/// One build pass: apply the feed since the last pass, refresh the inputs that
/// are not stored, rebuild what they affect, hand the result to the hub. Returns
/// the store revision built.
///
/// Only the feed read is async; everything after it (applying the feed to the
/// world, the build, the hub's comparison and the drop of the replaced configs)
/// runs on the blocking pool: at 100,000 sites it takes up to seconds, and on the
/// async workers it stalled heartbeats and API answers for that long.
pub async fn rebuild(deps: &BuildDeps, state: &mut BuildState) -> Result<i64, StoreError> {
    let t0 = std::time::Instant::now();
    deps.site_loads.build_started();
    let since = if state.builder.is_some() {
        state.revision
    } else {
        0
    };
    let (feed, full) = read_feed(&deps.store, since).await?;
    let read = t0.elapsed();
    let today = today_yyyymmdd(time::OffsetDateTime::now_utc().date());
    let previous = state.builder.take();
    let job_deps = deps.clone();
    // On an error or a panic the builder is lost: the next pass reloads.
    let builder = match tokio::task::spawn_blocking(move || {
        apply_and_build(&job_deps, previous, &feed, full, today, t0, read)
    })
    .await
    {
        Ok(r) => r?,
        Err(e) => {
            tracing::error!(error = %e, "config build panicked");
            return Ok(state.revision);
        }
    };
    let revision = builder.1;
    state.builder = Some(builder.0);
    state.revision = revision;
    Ok(revision)
}

/// The blocking part of [`rebuild`]: apply `feed` to the builder (a new one for a
/// full read), fill the inputs, build, hand the result to the hub. Returns the
/// builder and the store revision built.
fn apply_and_build(
    deps: &BuildDeps,
    previous: Option<Incremental>,
    feed: &Feed,
    full: bool,
    today: u32,
    t0: std::time::Instant,
    read: Duration,
) -> Result<(Incremental, i64), StoreError> {
    let (mut builder, dirty) = match previous {
        Some(mut b) if !full => {
            let dirty = b.apply(feed)?;
            (b, dirty)
        }
        _ => (Incremental::new(World::from_feed(feed)?), Dirty::default()),
    };
    deps.site_loads.build_read(builder.world.active_sites());
    fill_inputs(deps, &mut builder.world);
    let applied = t0.elapsed();
    let objects = feed.changed.len() + feed.deleted.len();
    let (rebuilt, changed) =
        deps.configs
            .build_and_apply(&mut builder, dirty, today, feed.revision);
    let built = t0.elapsed();
    tracing::debug!(
        revision = feed.revision,
        objects,
        full,
        rebuilt,
        changed = changed.len(),
        read_ms = read.as_millis(),
        apply_feed_ms = (applied - read).as_millis(),
        build_and_hub_ms = (built - applied).as_millis(),
        "config build phases"
    );
    Ok((builder, feed.revision))
}

/// Put the inputs that are not stored into `world`: health, service ports, the
/// mail flush counter and the configured plan and trash days.
fn fill_inputs(deps: &BuildDeps, world: &mut World) {
    world.health = world
        .servers
        .iter()
        .map(|s| (s.meta.id, deps.health.state(s.meta.id)))
        .collect();
    world.db_trash_days = deps.db_trash_days;
    world.site_versions_days = deps.site_versions_days;
    if world.default_plan != deps.default_plan {
        world.set_limits(deps.default_plan);
    }
    world.mail_flush = deps
        .configs
        .mail_flush
        .load(std::sync::atomic::Ordering::SeqCst);
    world.service_ports = world
        .servers
        .iter()
        .map(|s| {
            let port = deps
                .health
                .reported_port(s.meta.id)
                .unwrap_or_else(|| deps.probe_ports.of(s.data.role));
            (s.meta.id, port)
        })
        .collect();
}

/// Ask every mail server to retry its queue now.
pub fn flush_mail(configs: &ConfigHub, changes: &ChangeNotifier) {
    configs
        .mail_flush
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    changes.changed();
}

/// A date as `YYYYMMDD`, e.g. `20261125`.
pub fn today_yyyymmdd(date: time::Date) -> u32 {
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 10_000 + u32::from(u8::from(date.month())) * 100 + u32::from(date.day())
}

/// Longest rest between two builds (see [`run`]).
const MAX_REST: Duration = Duration::from_millis(250);

/// How long tombstones are kept in the change feed: a controller (or key task)
/// further behind than that reloads everything.
const TOMBSTONE_KEEP: time::Duration = time::Duration::hours(24);

/// How often old tombstones are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The builder task: build at start, after every change notification and every
/// resync interval (the feed then tells whether another controller changed
/// something); until the controller stops. Also prunes old tombstones.
pub async fn run(deps: BuildDeps) {
    let mut changes = deps.changes.subscribe();
    let mut stopping = deps.stopping.clone();
    let mut state = BuildState::default();
    let mut rest_until = tokio::time::Instant::now();
    let mut next_prune = tokio::time::Instant::now();
    loop {
        // Under a burst of API writes, building back to back would take a core away
        // from the API. So when changes kept coming while a build ran, the builder
        // rests as long as that build took and coalesces them into the next build;
        // a change that arrives on its own is built at once.
        tokio::time::sleep_until(rest_until).await;
        changes.mark_unchanged();
        let started = tokio::time::Instant::now();
        if let Err(e) = rebuild(&deps, &mut state).await {
            tracing::warn!(error = %e, "config build failed; retrying");
        }
        if started >= next_prune {
            next_prune = started + PRUNE_EVERY;
            let before = time::OffsetDateTime::now_utc() - TOMBSTONE_KEEP;
            if let Err(e) = deps.store.prune_tombstones(before).await {
                tracing::warn!(error = %e, "cannot prune the change feed's tombstones");
            }
        }
        let took = started.elapsed();
        let burst = changes.has_changed().unwrap_or(false);
        rest_until = tokio::time::Instant::now()
            + if burst {
                took.min(MAX_REST)
            } else {
                Duration::ZERO
            };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            r = stopping.changed() => if r.is_err() || *stopping.borrow() { return },
            () = tokio::time::sleep(deps.resync) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_serials_survive_a_restart_through_the_journal() {
        use proto::agent_v1::{ZoneContent, ZoneRecord};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zone-serials.log");
        let zone = |ip: &str| ZoneContent {
            origin: "example.com".into(),
            serial: 0,
            records: vec![
                ZoneRecord {
                    name: "example.com".into(),
                    ttl: 3600,
                    rtype: "SOA".into(),
                    data: "ns1.example.net. hostmaster.example.com. 0 3600 600 1209600 300".into(),
                },
                ZoneRecord {
                    name: "example.com".into(),
                    ttl: 60,
                    rtype: "A".into(),
                    data: ip.into(),
                },
            ],
        };
        let hub = ConfigHub::with_serial_journal(&path).unwrap();
        let mut z = zone("192.0.2.1");
        {
            let mut s = hub.serials.lock().unwrap();
            s.assign(&mut z, 20_261_126);
        }
        assert_eq!(z.serial, 2_026_112_600);
        let changes = hub.serials.lock().unwrap().take_changes();
        hub.journal_serials(&changes);
        let mut z2 = zone("192.0.2.2");
        hub.serials.lock().unwrap().assign(&mut z2, 20_261_126);
        let changes = hub.serials.lock().unwrap().take_changes();
        hub.journal_serials(&changes);
        assert_eq!(z2.serial, 2_026_112_601);
        drop(hub);
        // A torn last line is ignored.
        {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(b"2026112699 abc").unwrap();
        }

        // "Restart": same content keeps its serial, a change continues from it.
        let hub = ConfigHub::with_serial_journal(&path).unwrap();
        let mut same = zone("192.0.2.2");
        hub.serials.lock().unwrap().assign(&mut same, 20_261_126);
        assert_eq!(same.serial, 2_026_112_601);
        let mut changed = zone("192.0.2.3");
        hub.serials.lock().unwrap().assign(&mut changed, 20_261_126);
        assert_eq!(changed.serial, 2_026_112_602);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "compacted at open: {text}");
    }

    #[test]
    fn date_serial_base() {
        let d = time::macros::date!(2026 - 11 - 05);
        assert_eq!(today_yyyymmdd(d), 20_261_105);
        let d = time::macros::date!(1999 - 12 - 31);
        assert_eq!(today_yyyymmdd(d), 19_991_231);
    }
}
