//! The status file `state_dir/status.json`: what the agent is serving right now.
//!
//! Written atomically (temp file, fsync, rename, directory fsync) whenever the
//! applied revision or an engine's health changes, so operators and tests can see
//! which desired config the agent serves even while no controller answers.
//!
//! ```json
//! {"server":"web-1","applied_revision":42,"engines":[{"name":"web","state":"not_built","detail":"…"}]}
//! ```

use std::path::{Path, PathBuf};

use proto::agent_v1::EngineHealth;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// The status file of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("status.json")
}

/// The content of the status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// This server's name.
    pub server: String,
    /// Revision of the desired config the role engine last applied successfully
    /// (0 before the first).
    pub applied_revision: i64,
    /// Health of each engine.
    pub engines: Vec<EngineHealth>,
}

/// Write `status` to `state_dir/status.json` atomically (mode 0644: it holds no
/// secret).
pub fn store(state_dir: &Path, status: &AgentStatus) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    write_atomic(&path(state_dir), &bytes, 0o644)
}

/// Read the status file; `Ok(None)` when there is none yet.
pub fn load(state_dir: &Path) -> std::io::Result<Option<AgentStatus>> {
    match std::fs::read(path(state_dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_v1::EngineState;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let s = AgentStatus {
            server: "web-1".into(),
            applied_revision: 7,
            engines: vec![EngineHealth {
                name: "web".into(),
                state: EngineState::NotBuilt,
                detail: "x".into(),
            }],
        };
        store(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(s));
    }
}
