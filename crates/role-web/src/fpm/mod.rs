//! PHP-FPM management: one pool per PHP site, spread over php-fpm masters so that
//! adding, removing or changing one site never reloads another site's pool.
//!
//! Each pool runs as the site's own system user (created with `useradd --system`
//! when the engine runs as root; creation is serialised host-wide and the ids are
//! always looked up by name, see [`ensure_user`]), listens on its own unix socket
//! under the engine's PHP directory (mode 0660, owned by the engine's user), and is
//! confined with `open_basedir` to the site's directory plus its private temp dir.
//! The site's directory `<content_root>/<domain>` is made `root:<site group> 0750`,
//! so one site's PHP cannot even list another's files.
//!
//! **Masters.** php-fpm cannot add or drop one pool: a reload (`SIGUSR2`) re-executes
//! the master and restarts every worker of every pool (requests longer than
//! `process_control_timeout` are killed, opcode caches start cold). One master per
//! site avoids that but costs about 7 MB of private memory per idle master (measured:
//! php-fpm 8.2, `ondemand`, Pss_Dirty 6.5 MB), 70 GB for 10,000 PHP sites. So a
//! master holds a *batch*: the pools of one [`FpmManager::apply`] that no running
//! master holds. The first apply (agent start) puts every site in one master, as
//! cheap as before; each later change that adds sites starts one more master for
//! just those. A pool no longer wanted is *retired* in its master, not removed: it
//! keeps no worker (`ondemand`) and nothing routes to it, and it becomes live again
//! in place if the site comes back. A master whose pools are all retired stops; a
//! dead one is restarted with its live pools only ([`FpmManager::revive`]). With
//! more than [`MERGE_ABOVE`] masters, the idle ones (no worker at all, i.e. no
//! request for `pm.process_idle_timeout`) are merged into one, gracefully: nothing
//! in use is restarted, and a request arriving meanwhile waits for the socket. The
//! pure bookkeeping is [`converge`].
//!
//! Every master is a child of the engine (php-fpm `setsid`s itself; its title
//! names its config in the engine's state dir, so `hostplane up` still finds an
//! orphan) and is stopped with the engine.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::plan::PhpSite;

/// Masters beyond which the idle ones are merged into one ([`FpmManager::revive`]).
pub const MERGE_ABOVE: usize = 4;

mod master;
mod users;

pub use master::render_config;
use master::Master;
pub use users::{ensure_user, lookup_user, Ids};

/// PHP-FPM could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum FpmError {
    /// No php-fpm binary was found (install the Debian package `php-fpm`).
    #[error("php-fpm not found (install the `php-fpm` package or set the php_fpm option)")]
    NoBinary,
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `useradd` failed.
    #[error("creating user {user}: {detail}")]
    User {
        /// The user.
        user: String,
        /// useradd's output.
        detail: String,
    },
    /// A site's PHP version has no php-fpm here (its package is not installed).
    #[error("PHP {0} is not installed (no /usr/sbin/php-fpm{0})")]
    NoVersion(String),
    /// The master did not open the pool sockets in time.
    #[error("php-fpm did not become ready: {0}")]
    NotReady(String),
    /// Some pools could not be prepared (each named with its cause); the others
    /// are served.
    #[error("{0}")]
    Pools(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FpmError {
    let what = what.into();
    move |source| FpmError::Io { what, source }
}

/// The pools of one master: those routed to and those retired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSet {
    /// Pools the plan routes to.
    pub live: Vec<PhpSite>,
    /// Pools still configured in the running master but no longer wanted.
    pub retired: Vec<PhpSite>,
}

/// What [`converge`] leaves to do with processes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Converged {
    /// Wanted pools no master holds: they need a new master.
    pub fresh: Vec<PhpSite>,
    /// Masters (by index) that must restart without their retired pools, because
    /// one of those is wanted with another definition and its socket is held.
    pub restart: Vec<usize>,
}

/// Make exactly `wanted` live across the masters' `sets` (pure): a live pool no
/// longer wanted, or wanted with another definition, is retired where it is; a
/// retired pool wanted again as it was becomes live where it is. No pool moves
/// between masters, so no running master is restarted, except one holding a
/// retired pool whose new definition must bind its socket (`restart`).
pub fn converge(sets: &mut [PoolSet], wanted: &[PhpSite]) -> Converged {
    let mut by_user: HashMap<&str, &PhpSite> = HashMap::new();
    for p in wanted {
        by_user.entry(p.user.as_str()).or_insert(p);
    }
    let mut held: HashSet<String> = HashSet::new();
    let mut restart = Vec::new();
    for (i, set) in sets.iter_mut().enumerate() {
        let (keep, retire): (Vec<_>, Vec<_>) = std::mem::take(&mut set.live)
            .into_iter()
            .partition(|p| by_user.get(p.user.as_str()) == Some(&p));
        set.live = keep;
        set.retired.extend(retire);
        let (back, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut set.retired)
            .into_iter()
            .partition(|p| by_user.get(p.user.as_str()) == Some(&p) && !held.contains(&p.user));
        set.live.extend(back);
        set.retired = stay;
        held.extend(set.live.iter().map(|p| p.user.clone()));
        // Only a socket still bound by a retired pool and wanted again with
        // another definition forces a restart; a pool whose settings changed has
        // a socket of its own ([`crate::plan`]) and starts beside the old one.
        if set.retired.iter().any(|p| {
            by_user
                .get(p.user.as_str())
                .is_some_and(|w| w.socket == p.socket)
        }) {
            restart.push(i);
        }
    }
    let mut fresh = Vec::new();
    let mut seen = HashSet::new();
    for p in wanted {
        if !held.contains(&p.user) && seen.insert(p.user.clone()) {
            fresh.push(p.clone());
        }
    }
    Converged { fresh, restart }
}

/// The php-fpm binary of this system: `/usr/sbin/php-fpm`, else the highest
/// `/usr/sbin/php-fpmX.Y`.
pub fn find_binary() -> Option<PathBuf> {
    let plain = Path::new("/usr/sbin/php-fpm");
    if plain.exists() {
        return Some(plain.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The PHP versions installed as Debian installs them (`/usr/sbin/php-fpmX.Y`),
/// lowest first, with their binaries.
pub fn installed() -> Vec<(String, PathBuf)> {
    installed_in(Path::new("/usr/sbin"))
}

/// [`installed`] in `dir` (tests).
pub fn installed_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let v = model::web::PhpVersion::new(name.strip_prefix("php-fpm")?).ok()?;
            Some((v.to_string(), e.path()))
        })
        .collect();
    found.sort_by_key(|(v, _)| version_key(v));
    found
}

/// `8.10` after `8.9`: compare numerically.
fn version_key(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// What a php-fpm binary says its version is: (`8.2`, `8.2.36`), from `-v`.
pub fn binary_version(binary: &Path) -> Option<(String, String)> {
    let out = std::process::Command::new(binary).arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let full = text.split_whitespace().nth(1)?.to_owned();
    let mut parts = full.split('.');
    let short = format!("{}.{}", parts.next()?, parts.next()?);
    model::web::PhpVersion::new(&short).ok()?;
    Some((short, full))
}

/// Runs the php-fpm masters of one engine and converges them on a set of pools.
#[derive(Debug)]
pub struct FpmManager {
    dir: PathBuf,
    binary: Option<PathBuf>,
    /// The binary of each installed PHP version (a site's chosen version).
    versions: HashMap<String, PathBuf>,
    masters: Vec<Master>,
    next_id: u64,
    as_root: bool,
    /// Site users already looked up (or created): `/etc/passwd` is read once per
    /// user, not once per pool and apply.
    users: HashMap<String, Ids>,
    /// Pools whose site directory was given its owner and mode (it may appear only
    /// after the content is synced; until then each apply and [`Self::revive`]
    /// retry).
    owned: HashSet<String>,
}

impl FpmManager {
    /// A manager keeping its masters' configs, pids and logs in `dir/m<id>/` and
    /// the pool sockets and temp dirs in `dir`; `binary` is the php-fpm executable
    /// (found with [`find_binary`] when `None`).
    pub fn new(dir: PathBuf, binary: Option<PathBuf>) -> Self {
        Self {
            dir,
            binary: binary.or_else(find_binary),
            versions: installed().into_iter().collect(),
            masters: Vec::new(),
            next_id: 1,
            as_root: rustix::process::geteuid().is_root(),
            users: HashMap::new(),
            owned: HashSet::new(),
        }
    }

    /// The pids of the running masters.
    pub fn pids(&mut self) -> Vec<u32> {
        self.masters.iter_mut().filter_map(Master::pid).collect()
    }

    /// The pid of the master serving `user`'s pool, while it runs.
    pub fn master_of(&mut self, user: &str) -> Option<u32> {
        self.masters
            .iter_mut()
            .find(|m| m.live.iter().any(|p| p.user == user))
            .and_then(Master::pid)
    }

    /// Whether every master with live pools runs (true when there are none).
    pub fn running(&mut self) -> bool {
        self.masters
            .iter_mut()
            .all(|m| m.live.is_empty() || m.running())
    }

    /// The live pools now, master by master.
    pub fn pools(&self) -> Vec<PhpSite> {
        self.masters.iter().flat_map(|m| m.live.clone()).collect()
    }

    /// Converge on exactly `pools` (idempotent) without restarting any running
    /// master that keeps a pool (see the module doc); returns when every started
    /// master's sockets accept. A pool that cannot be prepared (its user or
    /// directories) is left out and named in the error; the others are served.
    pub async fn apply(&mut self, pools: &[PhpSite]) -> Result<(), FpmError> {
        let mut sets: Vec<PoolSet> = self
            .masters
            .iter()
            .map(|m| PoolSet {
                live: m.live.clone(),
                retired: m.retired.clone(),
            })
            .collect();
        let plan = converge(&mut sets, pools);
        for (m, set) in self.masters.iter_mut().zip(sets) {
            m.live = set.live;
            m.retired = set.retired;
        }
        for m in &self.masters {
            for p in &m.retired {
                self.owned.remove(&p.user);
            }
        }
        // Masters with nothing live stop (releasing their sockets) before any
        // master binds a socket again; so do those that must drop a retired pool
        // (they start again below, with their live pools only).
        let stops = |i: usize, m: &Master| m.live.is_empty() || plan.restart.contains(&i);
        for (i, m) in self.masters.iter_mut().enumerate() {
            if stops(i, m) {
                m.terminate();
            }
        }
        for (i, m) in self.masters.iter_mut().enumerate() {
            if stops(i, m) {
                m.reap().await;
            }
        }
        self.masters.retain(|m| {
            if m.live.is_empty() {
                let _ = std::fs::remove_dir_all(&m.dir);
            }
            !m.live.is_empty()
        });
        let mut errors = Vec::new();
        if !plan.fresh.is_empty() {
            let mut ready = Vec::new();
            for p in plan.fresh {
                match self.prepare(&p) {
                    Ok(()) => ready.push(p),
                    Err(e) => errors.push(format!("pool {}: {e}", p.user)),
                }
            }
            // One master per PHP version: a master runs one php-fpm binary.
            let mut by_version: Vec<(Option<String>, Vec<PhpSite>)> = Vec::new();
            for p in ready {
                match by_version.iter_mut().find(|(v, _)| *v == p.version) {
                    Some((_, list)) => list.push(p),
                    None => by_version.push((p.version.clone(), vec![p])),
                }
            }
            for (version, pools) in by_version {
                let id = self.next_id;
                self.next_id += 1;
                let dir = self.dir.join(format!("m{id}"));
                self.masters.push(Master::new(dir, version, pools));
            }
        }
        if let Err(e) = self.revive().await {
            errors.push(e.to_string());
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(FpmError::Pools(errors.join("; "))),
        }
    }

    /// Start every master that has live pools and does not run (new, dead, or
    /// stopped to drop a pool), wait until their sockets accept, and give site
    /// directories synced since the last try their owner.
    pub async fn revive(&mut self) -> Result<(), FpmError> {
        self.merge_idle().await;
        let pending: Vec<PhpSite> = self
            .masters
            .iter()
            .flat_map(|m| m.live.iter())
            .filter(|p| !self.owned.contains(&p.user))
            .cloned()
            .collect();
        for p in &pending {
            if let Err(e) = self.prepare(p) {
                tracing::warn!(pool = %p.user, error = %e, "preparing a PHP pool failed");
            }
        }
        let mut started = Vec::new();
        for (i, m) in self.masters.iter_mut().enumerate() {
            if m.live.is_empty() || m.running() {
                continue;
            }
            let binary = match &m.version {
                None => self.binary.clone().ok_or(FpmError::NoBinary)?,
                Some(v) => self
                    .versions
                    .get(v)
                    .cloned()
                    .ok_or_else(|| FpmError::NoVersion(v.clone()))?,
            };
            users::prepare_dir(&self.dir, self.as_root)?;
            m.start(&binary, self.as_root)?;
            started.push(i);
        }
        let mut errors = Vec::new();
        for i in started {
            if let Err(e) = self.masters[i].wait_ready().await {
                errors.push(e.to_string());
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(FpmError::NotReady(errors.join("; "))),
        }
    }

    /// With more than [`MERGE_ABOVE`] masters, stop the idle ones but the largest
    /// (no worker: no request within the idle timeout, so no worker or request is
    /// disturbed) and
    /// put their live pools in one new master, which [`Self::revive`] starts; this
    /// bounds the masters' memory after many batches. A connection arriving while
    /// the pools change masters waits for the new socket
    /// ([`crate::fastcgi::execute`] retries a missing or refused socket briefly).
    async fn merge_idle(&mut self) {
        if self.masters.len() <= MERGE_ABOVE {
            return;
        }
        // The largest master is left alone: restarting it would cost the most
        // (every pool's socket, a cold opcode cache) for the least gain.
        let largest = (0..self.masters.len()).max_by_key(|&i| self.masters[i].live.len());
        let idle_all: Vec<usize> = (0..self.masters.len())
            .filter(|&i| Some(i) != largest && self.masters[i].idle())
            .collect();
        // Masters merge only with masters of the same PHP version (one binary
        // each): the version with the most idle masters first.
        let mut versions: Vec<Option<String>> = idle_all
            .iter()
            .map(|&i| self.masters[i].version.clone())
            .collect();
        versions.sort();
        versions.dedup();
        let Some(version) = versions.into_iter().max_by_key(|v| {
            idle_all
                .iter()
                .filter(|&&i| self.masters[i].version == *v)
                .count()
        }) else {
            return;
        };
        let idle: Vec<usize> = idle_all
            .into_iter()
            .filter(|&i| self.masters[i].version == version)
            .collect();
        if idle.len() < 2 {
            return;
        }
        for &i in &idle {
            self.masters[i].quit();
        }
        let mut pools = Vec::new();
        for &i in idle.iter().rev() {
            let mut m = self.masters.remove(i);
            m.reap().await;
            let _ = std::fs::remove_dir_all(&m.dir);
            pools.extend(std::mem::take(&mut m.live));
        }
        tracing::info!(
            masters = idle.len(),
            pools = pools.len(),
            "merging idle php-fpm masters"
        );
        let id = self.next_id;
        self.next_id += 1;
        self.masters
            .push(Master::new(self.dir.join(format!("m{id}")), version, pools));
    }

    /// Create the pool's user and directories; the site directory's owner once it
    /// exists.
    fn prepare(&mut self, p: &PhpSite) -> Result<(), FpmError> {
        users::prepare_dir(&self.dir, self.as_root)?;
        let ids = match (self.as_root, self.users.get(&p.user)) {
            (false, _) => None,
            (true, Some(ids)) => Some(*ids),
            (true, None) => {
                let ids = ensure_user(&p.user)?;
                self.users.insert(p.user.clone(), ids);
                Some(ids)
            }
        };
        if users::prepare_pool(p, ids)? {
            self.owned.insert(p.user.clone());
        }
        Ok(())
    }

    /// Stop every master (SIGTERM: each stops its workers), waiting up to 5 s each.
    pub async fn stop(&mut self) {
        for m in &mut self.masters {
            m.terminate();
        }
        for m in &mut self.masters {
            m.reap().await;
        }
        self.masters.clear();
        self.owned.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(user: &str) -> PhpSite {
        PhpSite {
            user: user.into(),
            socket: format!("/st/php/{user}.sock").into(),
            tmp_dir: format!("/st/php/tmp/{user}").into(),
            site_dir: format!("/st/content/{user}").into(),
            version: None,
            ini: Vec::new(),
        }
    }

    fn users(v: &[PhpSite]) -> Vec<&str> {
        v.iter().map(|p| p.user.as_str()).collect()
    }

    #[test]
    fn a_new_pool_goes_to_a_new_master_and_no_other_moves() {
        let mut sets = vec![PoolSet {
            live: vec![pool("a"), pool("b")],
            retired: vec![],
        }];
        let before = sets.clone();
        let c = converge(&mut sets, &[pool("a"), pool("b"), pool("c")]);
        assert_eq!(users(&c.fresh), vec!["c"]);
        assert!(c.restart.is_empty());
        assert_eq!(sets, before, "the running master keeps its pools");
        // Applying the same again changes nothing.
        sets.push(PoolSet {
            live: vec![pool("c")],
            retired: vec![],
        });
        let before = sets.clone();
        let c = converge(&mut sets, &[pool("c"), pool("b"), pool("a"), pool("a")]);
        assert_eq!(c, Converged::default());
        assert_eq!(sets, before);
    }

    #[test]
    fn removed_pools_retire_in_place_and_come_back_there() {
        let mut sets = vec![
            PoolSet {
                live: vec![pool("a"), pool("b")],
                retired: vec![],
            },
            PoolSet {
                live: vec![pool("c")],
                retired: vec![],
            },
        ];
        let c = converge(&mut sets, &[pool("a"), pool("c")]);
        assert_eq!(c, Converged::default());
        assert_eq!(users(&sets[0].live), vec!["a"]);
        assert_eq!(users(&sets[0].retired), vec!["b"]);
        // All of a master's pools gone: nothing live (the manager stops it).
        let c = converge(&mut sets, &[pool("a")]);
        assert_eq!(c, Converged::default());
        assert!(sets[1].live.is_empty());
        // b comes back where its socket still is, not in a new master.
        let c = converge(&mut sets, &[pool("b"), pool("a")]);
        assert_eq!(c, Converged::default());
        assert_eq!(users(&sets[0].live), vec!["a", "b"]);
        assert!(sets[0].retired.is_empty());
    }

    #[test]
    fn a_changed_pool_restarts_only_the_master_holding_its_socket() {
        let mut sets = vec![
            PoolSet {
                live: vec![pool("a"), pool("b")],
                retired: vec![],
            },
            PoolSet {
                live: vec![pool("c")],
                retired: vec![],
            },
        ];
        let mut b2 = pool("b");
        b2.site_dir = "/elsewhere/b".into();
        let c = converge(&mut sets, &[pool("a"), b2.clone(), pool("c")]);
        assert_eq!(c.fresh, vec![b2]);
        assert_eq!(c.restart, vec![0]);
        assert_eq!(users(&sets[0].retired), vec!["b"]);
        assert_eq!(users(&sets[1].live), vec!["c"]);
    }

    #[test]
    fn a_pool_with_new_settings_and_its_own_socket_restarts_no_master() {
        let mut sets = vec![PoolSet {
            live: vec![pool("a"), pool("b")],
            retired: vec![],
        }];
        let mut b2 = pool("b");
        b2.ini = vec!["php_admin_value[memory_limit] = 256M".into()];
        b2.socket = "/st/php/b-1234abcd.sock".into();
        let c = converge(&mut sets, &[pool("a"), b2.clone()]);
        assert_eq!(c.fresh, vec![b2.clone()]);
        assert!(c.restart.is_empty(), "a's master keeps running");
        assert_eq!(users(&sets[0].live), vec!["a"]);
        assert_eq!(users(&sets[0].retired), vec!["b"]);
        // Back to the old settings: the retired pool is live again in place.
        sets.push(PoolSet {
            live: vec![b2],
            retired: vec![],
        });
        let c = converge(&mut sets, &[pool("a"), pool("b")]);
        assert_eq!(c, Converged::default());
        assert_eq!(users(&sets[0].live), vec!["a", "b"]);
    }

    #[test]
    fn installed_versions_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "php-fpm8.2",
            "php-fpm7.4",
            "php-fpm8.10",
            "php-fpm",
            "php-fpmx",
            "php8.2",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let v: Vec<String> = installed_in(dir.path())
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(v, vec!["7.4", "8.2", "8.10"]);
    }
}
