//! The engine's options, read from the agent config's `[engine]` table and
//! validated before the engine starts (unknown values are refused).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use agent::supervisor::{EngineContext, EngineError};
use model::DbEngine;

use crate::conn::{DEFAULT_MARIADB_URL, DEFAULT_POSTGRES_URL};

/// Engine options, from the agent config's `[engine]` table.
#[derive(Debug, Clone)]
pub struct Options {
    /// `engines`: which servers to manage, comma separated (default
    /// `mariadb,postgres`).
    pub engines: Vec<DbEngine>,
    /// `managed`: `true` to run private server instances (default `false`).
    pub managed: bool,
    /// `managed_dir`: where managed instances keep their data (default: the
    /// engine's state dir). Its parents must be traversable by `mysql`/`postgres`.
    pub managed_dir: Option<PathBuf>,
    /// `mariadb_url`: admin URL when not managed (default the Debian socket as root).
    pub mariadb_url: String,
    /// `postgres_url`: admin URL when not managed (default the Debian socket as
    /// `postgres`).
    pub postgres_url: String,
    /// `registry_scope`: the key of this engine's objects in the servers'
    /// registries (default: the server name).
    pub scope: String,
    /// `size_interval_secs`: how often database sizes are measured and quotas
    /// enforced (default 60).
    pub size_interval: Duration,
    /// `resync_interval_secs`: how often a full reconcile runs without a new
    /// config (default 300).
    pub resync_interval: Duration,
}

fn secs(opts: &BTreeMap<String, String>, key: &str, default: u64) -> Result<Duration, EngineError> {
    match opts.get(key) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                EngineError::Invalid(format!("{key} = {v:?}: a positive number of seconds"))
            }),
    }
}

impl Options {
    /// Read the options of `ctx`; unknown values are refused.
    pub fn from_context(ctx: &EngineContext) -> Result<Self, EngineError> {
        let o = &ctx.options;
        let engines = match o.get("engines") {
            None => DbEngine::ALL.to_vec(),
            Some(list) => {
                let mut v = Vec::new();
                for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let e = part
                        .parse::<DbEngine>()
                        .map_err(|e| EngineError::Invalid(format!("engines: {e}")))?;
                    if !v.contains(&e) {
                        v.push(e);
                    }
                }
                v
            }
        };
        let managed = match o.get("managed").map(|s| s.trim()) {
            None | Some("false") | Some("no") | Some("0") => false,
            Some("true") | Some("yes") | Some("1") => true,
            Some(v) => {
                return Err(EngineError::Invalid(format!(
                    "managed = {v:?}: expected true or false"
                )))
            }
        };
        Ok(Self {
            engines,
            managed,
            managed_dir: o.get("managed_dir").map(PathBuf::from),
            mariadb_url: o
                .get("mariadb_url")
                .cloned()
                .unwrap_or_else(|| DEFAULT_MARIADB_URL.into()),
            postgres_url: o
                .get("postgres_url")
                .cloned()
                .unwrap_or_else(|| DEFAULT_POSTGRES_URL.into()),
            scope: o
                .get("registry_scope")
                .cloned()
                .unwrap_or_else(|| ctx.server.clone()),
            size_interval: secs(o, "size_interval_secs", 60)?,
            resync_interval: secs(o, "resync_interval_secs", 300)?,
        })
    }
}
