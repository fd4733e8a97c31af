//! The in-process harness: one hub and two replicas ("web-1", "web-2") in tempdirs,
//! connected by [`InProcess`] (switchable off to play a dead files server). Capture is
//! played by the tests: they tell a replica what changed ([`Look`]), as capture would.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proto::sitesync::Node;
use sitesync::hub::{Hub, HubConfig};
use sitesync::inprocess::InProcess;
use sitesync::replica::{Look, Replica, ReplicaConfig};

pub const SITE: &str = "shop.example";

pub struct Server {
    pub name: String,
    pub root: PathBuf,
    pub cfg: ReplicaConfig,
    pub replica: Replica,
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub hub_cfg: HubConfig,
    pub hub: Arc<Hub>,
    pub up: Arc<AtomicBool>,
    pub a: Server,
    pub b: Server,
}

pub fn hub_config(dir: &Path) -> HubConfig {
    let mut c = HubConfig::new(dir.join("hub"));
    c.reserve_bytes = 0;
    c
}

/// The plan: both web servers hold the site.
fn grant(hub: &Hub) {
    let sites: std::collections::BTreeSet<String> = [SITE.to_string()].into();
    hub.set_grants(
        [
            ("web-1".to_string(), sites.clone()),
            ("web-2".to_string(), sites),
        ]
        .into(),
    );
}

fn server(dir: &Path, name: &str, local: &[&str]) -> Server {
    let root = dir.join(name).join("site");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = ReplicaConfig {
        site: SITE.into(),
        server: name.into(),
        root: root.clone(),
        state: dir.join(name).join("state"),
        local: local.iter().map(|s| s.to_string()).collect(),
        keep: vec!["wp-content/uploads".into()],
        owner: None,
        chunk_size: 64 * 1024,
    };
    Server {
        name: name.into(),
        root,
        replica: Replica::open(cfg.clone()).unwrap(),
        cfg,
    }
}

impl World {
    pub fn new() -> World {
        World::with(|_| {}, &[])
    }

    pub fn with(tune: impl FnOnce(&mut HubConfig), local: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut hub_cfg = hub_config(dir.path());
        tune(&mut hub_cfg);
        let hub = Arc::new(Hub::open(hub_cfg.clone()).unwrap());
        grant(&hub);
        let a = server(dir.path(), "web-1", local);
        let b = server(dir.path(), "web-2", local);
        World {
            dir,
            hub_cfg,
            hub,
            up: Arc::new(AtomicBool::new(true)),
            a,
            b,
        }
    }

    pub fn conn(&self, s: &Server) -> InProcess {
        InProcess::new(self.hub.clone(), &s.name, self.up.clone())
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Restarts the hub process: a new `Hub` on the same directory.
    pub fn restart_hub(&mut self, tune: impl FnOnce(&mut HubConfig)) {
        tune(&mut self.hub_cfg);
        self.hub = Arc::new(Hub::open(self.hub_cfg.clone()).unwrap());
        grant(&self.hub);
    }

    /// Restarts a replica: reopened from its persisted index and outbox.
    pub fn restart(s: &mut Server) {
        s.replica = Replica::open(s.cfg.clone()).unwrap();
    }

    pub fn observe_a(&mut self, looks: &[Look]) {
        self.a.replica.observe(looks).unwrap();
    }

    pub fn observe_b(&mut self, looks: &[Look]) {
        self.b.replica.observe(looks).unwrap();
    }

    pub fn sync_a(&mut self) -> sitesync::replica::PushReport {
        let c = self.conn(&self.a);
        self.a.replica.sync(&c).unwrap()
    }

    pub fn sync_b(&mut self) -> sitesync::replica::PushReport {
        let c = self.conn(&self.b);
        self.b.replica.sync(&c).unwrap()
    }

    /// Rounds of sync on both until nothing is pending and both are at the hub's head.
    pub fn settle(&mut self) {
        for _ in 0..6 {
            self.sync_a();
            self.sync_b();
        }
        assert_eq!(self.a.replica.pending(), 0, "web-1 outbox not drained");
        assert_eq!(self.b.replica.pending(), 0, "web-2 outbox not drained");
    }

    pub fn hub_nodes(&self) -> BTreeMap<String, Node> {
        self.hub.manifest(SITE).unwrap().nodes
    }

    /// The hub's manifest equals both replicas' trees on disk and their indexes.
    pub fn assert_converged(&self) {
        let m = self.hub.manifest(SITE).unwrap();
        let disk_a = self.a.replica.disk_nodes().unwrap();
        let disk_b = self.b.replica.disk_nodes().unwrap();
        assert_eq!(disk_a, m.nodes, "web-1 differs from the hub");
        assert_eq!(disk_b, m.nodes, "web-2 differs from the hub");
        assert_eq!(self.a.replica.index().nodes, m.nodes, "web-1 index");
        assert_eq!(self.b.replica.index().nodes, m.nodes, "web-2 index");
        assert_eq!(self.a.replica.index().seq, m.seq);
        assert_eq!(self.b.replica.index().seq, m.seq);
    }
}

pub fn look(p: &str) -> Look {
    Look::Path(PathBuf::from(p))
}

pub fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

pub fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
