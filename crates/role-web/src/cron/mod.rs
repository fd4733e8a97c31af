//! A site's cron jobs on the one web server holding them (issue 15).
//!
//! The controller names each site's cron holder in the desired config
//! (`WebSite::cron`); this server runs a site's jobs when it is the holder, its
//! heartbeat lease is valid (`agent::lease`) and the handover time `not_before`
//! has passed — so two servers never run the same site's jobs, and a server keeps
//! running them while the controller is down, until the lease runs out.
//!
//! - [`cron_sites`]: the pure selection of what this server holds, from the config
//!   and the rendered plan (the site's pool settings and user).
//! - [`due`]: the pure decision of one minute: which jobs start, which are skipped
//!   and why (no lease, handover, the previous run still going).
//! - [`CronRunner`]: the real clock (a task waking at each minute), the runs
//!   ([`run`]: `php` as the site's user with the pool's settings, or an HTTP GET
//!   of the site on this engine) and their lines in `logs/<domain>.cron.log`.

mod run;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::lease::CronLease;
use model::cron::{CronCommand, CronSchedule};
use proto::agent_v1::WebConfig;
use tokio::sync::watch;

use crate::plan::{PhpSite, Plan};

pub use run::{pool_values, Outcome, MAX_OUTPUT};

/// One job ready to run.
#[derive(Debug, Clone)]
pub struct CronEntry {
    /// Its id within the site.
    pub id: u32,
    /// When it fires.
    pub schedule: CronSchedule,
    /// What it runs.
    pub command: CronCommand,
}

/// A site whose cron this server holds.
#[derive(Debug, Clone)]
pub struct CronSite {
    /// Its primary host name (the `Host` of GET jobs, the log's name).
    pub domain: String,
    /// Unix seconds before which no run starts (a handover).
    pub not_before: i64,
    /// Wall-clock bound of one run.
    pub timeout: Duration,
    /// Its jobs (those that did not parse are left out, with a warning).
    pub jobs: Vec<CronEntry>,
    /// The site's pool (user, `open_basedir`, `php.ini` values); `None`: PHP off.
    pub php: Option<PhpSite>,
    /// The site's tree (`<content>/<domain>/current`): scripts are relative to it
    /// and it is the working directory.
    pub tree: PathBuf,
}

/// The sites of `cfg` whose cron server `me` holds, with their pool settings
/// from `plan`; and a warning per job this engine cannot parse. Pure.
pub fn cron_sites(cfg: &WebConfig, plan: &Plan, me: &str) -> (Vec<CronSite>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for ws in &cfg.sites {
        let Some(cron) = &ws.cron else { continue };
        if cron.holder.as_deref() != Some(me) {
            continue;
        }
        let Some(site) = plan.site_named(&ws.domain) else {
            continue; // rejected by the render: nothing to run it with
        };
        let mut jobs = Vec::new();
        for j in &cron.jobs {
            match (
                CronSchedule::parse(&j.schedule),
                CronCommand::parse(&j.command),
            ) {
                (Ok(schedule), Ok(command)) => jobs.push(CronEntry {
                    id: j.id,
                    schedule,
                    command,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    warnings.push(format!("site {} cron job {}: {e}", ws.domain, j.id));
                }
            }
        }
        out.push(CronSite {
            domain: site.domain.clone(),
            not_before: cron.not_before,
            timeout: Duration::from_secs(cron.timeout_s.max(1)),
            jobs,
            php: site.php.clone(),
            tree: site.root.clone(),
        });
    }
    (out, warnings)
}

/// What one minute decides for one due job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start job `job` of site `site` (indexes into the sites given).
    Run {
        /// Site index.
        site: usize,
        /// Job index within the site.
        job: usize,
    },
    /// Do not start it, for `reason`.
    Skip {
        /// Site index.
        site: usize,
        /// Job index within the site.
        job: usize,
        /// Why, as the log says it.
        reason: String,
    },
}

/// The decision of minute `minute` (unix minutes) at unix second `now`: each job
/// whose schedule fires starts, unless the lease is not valid, the handover time
/// has not come, or its previous run (`running`: domain, job id) still goes. Pure.
pub fn due(
    sites: &[CronSite],
    minute: i64,
    now: i64,
    lease_valid: bool,
    running: &HashSet<(String, u32)>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for (si, site) in sites.iter().enumerate() {
        for (ji, job) in site.jobs.iter().enumerate() {
            if !job.schedule.fires(minute) {
                continue;
            }
            let reason = if !lease_valid {
                Some("skipped: no valid lease from the controller".to_owned())
            } else if now < site.not_before {
                Some(format!(
                    "skipped: the runner moved here; runs start at {}",
                    rfc3339(site.not_before)
                ))
            } else if running.contains(&(site.domain.clone(), job.id)) {
                Some("skipped: the previous run is still going".to_owned())
            } else {
                None
            };
            out.push(match reason {
                None => Action::Run { site: si, job: ji },
                Some(reason) => Action::Skip {
                    site: si,
                    job: ji,
                    reason,
                },
            });
        }
    }
    out
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The running cron of an engine: the minute task and the runs it started.
#[derive(Debug)]
pub struct CronRunner {
    sites: watch::Sender<Arc<Vec<CronSite>>>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// What the minute task and the runs share.
#[derive(Debug)]
struct Shared {
    /// The agent's lease ([`CronRunner::set_lease`]); none granted until then.
    lease: Mutex<CronLease>,
    log_dir: PathBuf,
    http: SocketAddr,
    /// Running jobs (domain, id) → process group (0 for GET jobs).
    running: Mutex<HashMap<(String, u32), u32>>,
    /// Appends to cron logs one run at a time.
    log_lock: Mutex<()>,
}

impl CronRunner {
    /// Start the minute task. `log_dir` holds `<domain>.cron.log`; `http` is this
    /// engine's plain HTTP address (GET jobs). Nothing runs before a lease is
    /// given ([`CronRunner::set_lease`]).
    pub fn start(log_dir: PathBuf, http: SocketAddr) -> Self {
        let (sites, rx) = watch::channel(Arc::new(Vec::new()));
        let shared = Arc::new(Shared {
            lease: Mutex::new(CronLease::default()),
            log_dir,
            http,
            running: Mutex::new(HashMap::new()),
            log_lock: Mutex::new(()),
        });
        let task = tokio::spawn(minutes(shared.clone(), rx));
        Self {
            sites,
            shared,
            task,
        }
    }

    /// Run under `lease` (the agent's, extended by its heartbeats).
    pub fn set_lease(&self, lease: CronLease) {
        *lock(&self.shared.lease) = lease;
    }

    /// The sites whose cron this server holds from now on.
    pub fn set(&self, sites: Vec<CronSite>) {
        self.sites.send_replace(Arc::new(sites));
    }

    /// Decide and start minute `minute` now (what the minute task does at each
    /// minute; tests call it to avoid waiting for the clock). Returns the actions.
    pub fn tick(&self, minute: i64) -> Vec<Action> {
        let sites = self.sites.borrow().clone();
        tick(&self.shared, &sites, minute)
    }

    /// Jobs running now (domain, id).
    pub fn running(&self) -> Vec<(String, u32)> {
        let mut v: Vec<_> = lock(&self.shared.running).keys().cloned().collect();
        v.sort();
        v
    }

    /// Stop the minute task and kill every run's process group.
    pub fn stop(&self) {
        self.task.abort();
        for (_, pgid) in lock(&self.shared.running).iter() {
            run::kill_group(*pgid);
        }
    }
}

impl Drop for CronRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wake at each minute boundary of the real clock and run what is due.
async fn minutes(shared: Arc<Shared>, rx: watch::Receiver<Arc<Vec<CronSite>>>) {
    let mut last = now_unix().div_euclid(60);
    loop {
        let now = time::OffsetDateTime::now_utc();
        let into =
            Duration::from_secs_f64(f64::from(now.second()) + f64::from(now.nanosecond()) / 1e9);
        tokio::time::sleep(Duration::from_secs(60).saturating_sub(into) + Duration::from_millis(5))
            .await;
        let minute = now_unix().div_euclid(60);
        if minute == last {
            continue; // woke early
        }
        // A clock jump forward fires only the current minute, never a backlog.
        last = minute;
        let sites = rx.borrow().clone();
        tick(&shared, &sites, minute);
    }
}

fn tick(shared: &Arc<Shared>, sites: &Arc<Vec<CronSite>>, minute: i64) -> Vec<Action> {
    let running: HashSet<(String, u32)> = lock(&shared.running).keys().cloned().collect();
    let lease_valid = lock(&shared.lease).valid();
    let actions = due(sites, minute, now_unix(), lease_valid, &running);
    for a in &actions {
        match a {
            Action::Run { site, job } => {
                let (site, job) = (&sites[*site], &sites[*site].jobs[*job]);
                lock(&shared.running).insert((site.domain.clone(), job.id), 0);
                tokio::spawn(run_one(shared.clone(), site.clone(), job.clone()));
            }
            Action::Skip { site, job, reason } => {
                let (site, job) = (&sites[*site], &sites[*site].jobs[*job]);
                write_log(
                    shared,
                    &site.domain,
                    &format!(
                        "{} job={} {reason} command={:?}\n",
                        rfc3339(now_unix()),
                        job.id,
                        job.command.to_string()
                    ),
                );
            }
        }
    }
    actions
}

/// One run, start to log line.
async fn run_one(shared: Arc<Shared>, site: CronSite, job: CronEntry) {
    let start = now_unix();
    let began = std::time::Instant::now();
    let key = (site.domain.clone(), job.id);
    let outcome = match &job.command {
        CronCommand::Php { script, args } => {
            let registered = |pgid: u32| {
                lock(&shared.running).insert(key.clone(), pgid);
            };
            run::php(&site, script, args, registered).await
        }
        CronCommand::Get { path } => run::get(shared.http, &site, path).await,
    };
    lock(&shared.running).remove(&key);
    let mut text = format!(
        "{} job={} start={} duration={:.3}s exit={} command={:?}\n",
        rfc3339(now_unix()),
        job.id,
        rfc3339(start),
        began.elapsed().as_secs_f64(),
        outcome.status,
        job.command.to_string()
    );
    for line in outcome.output.lines() {
        text.push_str(&format!("  job={} | {}\n", job.id, line));
    }
    if outcome.truncated {
        text.push_str(&format!(
            "  job={} | (output cut at {MAX_OUTPUT} bytes)\n",
            job.id
        ));
    }
    write_log(&shared, &site.domain, &text);
}

/// Append `text` to the site's cron log (created 0640 beside its other logs).
fn write_log(shared: &Shared, domain: &str, text: &str) {
    use std::io::Write as _;
    let _guard = lock(&shared.log_lock);
    let name = crate::log::site_file(domain, proto::agent_ops::LogKind::Cron);
    crate::log::rotate_if_due(&shared.log_dir, &name, crate::log::Rotation::default());
    let path = shared.log_dir.join(name);
    let res = std::fs::create_dir_all(&shared.log_dir).and_then(|()| {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)?
            .write_all(text.as_bytes())
    });
    if let Err(e) = res {
        tracing::error!(file = %path.display(), error = %e, "cannot write the cron log");
    }
}

#[cfg(test)]
mod tests;
