//! Every server's desired config with its own revision, and the task that keeps
//! them current.
//!
//! After every committed change ([`AppState::changed`]) and whenever the store
//! revision moved without this controller noticing (another controller on the same
//! PostgreSQL; checked every `agents.resync_interval_ms`), the builder task reads
//! the store, builds every server's config ([`crate::builder`]) and compares each
//! with the previous build by content hash. Only servers whose config changed get a
//! new revision — the global store revision of the build, or one more than their
//! previous revision if that is higher — so a change reaches only the servers it
//! affects, and a server's revision only grows.
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
use tokio::sync::watch;

use crate::builder::{build_all, Built, World};
use crate::state::AppState;
use crate::zones::ZoneSerials;

/// One server's current config.
#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
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

    /// Replace the configs with a new build made at store `revision`; returns the
    /// ids of the servers whose config changed (new ones included).
    pub fn apply(&self, revision: i64, built: BTreeMap<Id, Built>) -> Vec<Id> {
        let mut changed = Vec::new();
        {
            let mut hub = self.hub.write().unwrap_or_else(|p| p.into_inner());
            let mut next = HashMap::with_capacity(built.len());
            for (id, b) in built {
                let hash = b.content_hash();
                match hub.servers.remove(&id) {
                    Some(old) if old.hash == hash => {
                        next.insert(id, old);
                    }
                    old => {
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
                        let delta = crate::delta::Tracked::new(
                            &doc,
                            old.as_ref().map(|o| o.delta.as_ref()),
                        );
                        next.insert(
                            id,
                            Entry {
                                hash,
                                doc: Arc::new(doc),
                                delta: Arc::new(delta),
                            },
                        );
                        changed.push(id);
                    }
                }
            }
            let removed = !hub.servers.is_empty();
            hub.servers = next;
            hub.built_revision = revision;
            let first = !hub.ready;
            hub.ready = true;
            if !(first || removed || !changed.is_empty()) {
                return changed;
            }
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
        changed
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

/// Build once: read the store, build, apply. Returns the store revision built.
pub async fn rebuild(state: &AppState) -> Result<i64, store::StoreError> {
    let t0 = std::time::Instant::now();
    state.site_loads.build_started();
    let (revision, mut world) = World::load(&state.store).await?;
    state.site_loads.build_read(&world.sites);
    let loaded = t0.elapsed();
    match crate::keys::ensure(state, &mut world).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(changed = n, "key material updated"),
        // Build anyway: servers keep the key material they had.
        Err(e) => tracing::warn!(error = %e, "cannot update key material"),
    }
    world.health = world
        .servers
        .iter()
        .map(|s| (s.meta.id, state.health.state(s.meta.id)))
        .collect();
    world.db_trash_days = state.config.databases.trash_days;
    world.set_limits(state.config.default_plan);
    world.mail_flush = state
        .configs
        .mail_flush
        .load(std::sync::atomic::Ordering::SeqCst);
    world.service_ports = world
        .servers
        .iter()
        .map(|s| {
            let port = state
                .health
                .reported_port(s.meta.id)
                .unwrap_or_else(|| state.config.health.probe_ports.of(s.data.role));
            (s.meta.id, port)
        })
        .collect();
    let today = today_yyyymmdd(time::OffsetDateTime::now_utc().date());
    let builder = state.clone();
    let keyed = t0.elapsed();
    let built =
        match tokio::task::spawn_blocking(move || builder.configs.build(&world, today)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "config build panicked");
                return Ok(revision);
            }
        };
    let assembled = t0.elapsed();
    let changed = state.configs.apply(revision, built);
    tracing::debug!(
        revision,
        changed = changed.len(),
        load_ms = loaded.as_millis(),
        keys_ms = (keyed - loaded).as_millis(),
        build_ms = (assembled - keyed).as_millis(),
        apply_ms = (t0.elapsed() - assembled).as_millis(),
        "config build phases"
    );
    Ok(revision)
}

/// Ask every mail server to retry its queue now.
pub fn flush_mail(state: &AppState) {
    state
        .configs
        .mail_flush
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    state.changed();
}

/// A date as `YYYYMMDD`, e.g. `20261125`.
pub fn today_yyyymmdd(date: time::Date) -> u32 {
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 10_000 + u32::from(u8::from(date.month())) * 100 + u32::from(date.day())
}

/// Longest rest between two builds (see [`run`]).
const MAX_REST: Duration = Duration::from_millis(250);

/// The builder task: rebuild at start, after every [`AppState::changed`], and when
/// the store revision moved; until the controller stops.
pub async fn run(state: AppState) {
    let mut changes = state.changes.subscribe();
    let mut stopping = state.stopping.subscribe();
    let resync = Duration::from_millis(state.config.agents.resync_interval_ms);
    let mut last: Option<i64> = None;
    let mut rest_until = tokio::time::Instant::now();
    loop {
        // A full rebuild reads the whole store. Under a burst of API writes, rebuilding
        // back to back would take a core away from the API (measured: domain creations
        // fell from ~1000/s to ~390/s at 10,000 domains). So when changes kept coming
        // while a build ran, the builder rests as long as that build took (keeping it
        // under half a core) and coalesces them into the next build; a change that
        // arrives on its own is built at once.
        tokio::time::sleep_until(rest_until).await;
        changes.mark_unchanged();
        let started = tokio::time::Instant::now();
        match rebuild(&state).await {
            Ok(rev) => last = Some(rev),
            Err(e) => tracing::warn!(error = %e, "config build failed; retrying"),
        }
        let took = started.elapsed();
        let burst = changes.has_changed().unwrap_or(false);
        rest_until = tokio::time::Instant::now()
            + if burst {
                took.min(MAX_REST)
            } else {
                Duration::ZERO
            };
        loop {
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() { return; }
                    break;
                }
                r = stopping.changed() => {
                    if r.is_err() || *stopping.borrow() { return; }
                }
                () = tokio::time::sleep(resync) => {
                    match state.store.revision().await {
                        Ok(rev) if Some(rev) == last => {}
                        Ok(_) => break,
                        Err(e) => tracing::warn!(error = %e, "cannot read the store revision"),
                    }
                }
            }
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
