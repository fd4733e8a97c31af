#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic
//! Many sites under a low open-files limit: one hub and two replicas of each of 200
//! sites in one process whose soft `RLIMIT_NOFILE` is lowered to 256. Holding a file
//! open per site (the hub's log and tree, a replica's tree) ran out of descriptors
//! here; now every site replicates and the open descriptors stay bounded, whatever the
//! number of sites. Alone in its test binary, since the limit is the whole process's.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use sitesync::hub::{Hub, HubConfig};
use sitesync::inprocess::InProcess;
use sitesync::replica::{Look, Replica, ReplicaConfig};

/// The old layout needed four descriptors per site (two on the hub, one per replica):
/// 800 here, over three times the limit below; kept small so the test's fsyncs stay
/// within seconds (it ran out of descriptors at the first replica open before the fix).
const SITES: usize = 200;
const SOFT_LIMIT: u64 = 256;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn replica(dir: &std::path::Path, server: &str, site: &str) -> Replica {
    let root = dir.join(server).join(site);
    std::fs::create_dir_all(&root).unwrap();
    Replica::open(ReplicaConfig {
        site: site.into(),
        server: server.into(),
        root,
        state: dir.join(format!("{server}-state")).join(site),
        local: Vec::new(),
        keep: Vec::new(),
        owner: None,
        chunk_size: 64 * 1024,
    })
    .unwrap()
}

#[test]
fn two_hundred_sites_replicate_under_a_limit_of_256_open_files() {
    let now = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(SOFT_LIMIT),
            maximum: now.maximum,
        },
    )
    .unwrap();
    let before = open_fds();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = HubConfig::new(dir.path().join("hub"));
    cfg.reserve_bytes = 0;
    let hub = Arc::new(Hub::open(cfg).unwrap());
    let sites: Vec<String> = (0..SITES).map(|i| format!("site{i:05}.example")).collect();
    let all: BTreeSet<String> = sites.iter().cloned().collect();
    hub.set_grants(
        [
            ("web-1".to_string(), all.clone()),
            ("web-2".to_string(), all),
        ]
        .into(),
    );
    let up = Arc::new(AtomicBool::new(true));
    let web1 = InProcess::new(hub.clone(), "web-1", up.clone());
    let web2 = InProcess::new(hub.clone(), "web-2", up);

    // every replica stays open for the whole test, as a web server's do
    let mut a = Vec::with_capacity(SITES);
    let mut b = Vec::with_capacity(SITES);
    let mut most = 0;
    for (i, site) in sites.iter().enumerate() {
        let mut ra = replica(dir.path(), "web-1", site);
        std::fs::write(ra.root_path().join("index.php"), format!("<?php echo {i};")).unwrap();
        ra.observe(&[Look::Path("index.php".into())]).unwrap();
        let pushed = ra.sync(&web1).unwrap();
        assert_eq!(ra.pending(), 0, "{site}: {pushed:?}");
        a.push(ra);
        b.push(replica(dir.path(), "web-2", site));
        most = most.max(open_fds());
    }
    for (i, rb) in b.iter_mut().enumerate() {
        rb.sync(&web2).unwrap();
        let got = std::fs::read_to_string(rb.root_path().join("index.php")).unwrap();
        assert_eq!(got, format!("<?php echo {i};"), "{}", sites[i]);
        most = most.max(open_fds());
    }
    // a second round on every tenth site: the hub appends to logs it opened long ago
    for (i, (ra, rb)) in a.iter_mut().zip(b.iter_mut()).enumerate().step_by(10) {
        std::fs::write(ra.root_path().join("index.php"), format!("v2 {i}")).unwrap();
        ra.observe(&[Look::Path("index.php".into())]).unwrap();
        ra.sync(&web1).unwrap();
        rb.sync(&web2).unwrap();
        let got = std::fs::read_to_string(rb.root_path().join("index.php")).unwrap();
        assert_eq!(got, format!("v2 {i}"));
        assert_eq!(hub.status(&sites[i], 0).unwrap().seq, 2);
    }
    most = most.max(open_fds());
    // bounded: a few per operation in flight, none per site
    assert!(
        most < before + 64,
        "{most} descriptors open at most with {SITES} sites ({before} before)"
    );
}
