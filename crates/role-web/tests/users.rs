//! Site users on a host with several web engines (`hostplane up` runs two or more web
//! servers on one machine): engines creating the same `hp-<domain>` user at the same
//! moment must all end with the ids the system keeps, or a site folder gets a group
//! that no longer exists and php-fpm answers "File not found.". Needs root (real
//! `useradd`); skipped otherwise.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use role_web::fpm::{ensure_user, lookup_user, Ids};
use std::sync::{Arc, Barrier};

/// Removes the test users (and their groups) whatever the outcome.
struct Users(Vec<String>);

impl Drop for Users {
    fn drop(&mut self) {
        for u in &self.0 {
            let _ = std::process::Command::new("userdel").arg(u).output();
            let _ = std::process::Command::new("groupdel").arg(u).output();
        }
    }
}

/// The gid of group `name` from /etc/group (what php-fpm's `group = name` uses).
fn group_gid(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

#[test]
fn engines_racing_to_create_one_user_agree_with_the_system() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: creating system users needs root");
        return;
    }
    const ENGINES: usize = 4;
    let names: Vec<String> = (0..4)
        .map(|i| format!("hp-race{}-{i}", std::process::id()))
        .collect();
    let _cleanup = Users(names.clone());
    for name in &names {
        assert_eq!(lookup_user(name), None, "{name} exists before the test");
        let start = Arc::new(Barrier::new(ENGINES));
        let threads: Vec<_> = (0..ENGINES)
            .map(|_| {
                let (name, start) = (name.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    ensure_user(&name)
                })
            })
            .collect();
        let got: Vec<Ids> = threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        let kept = lookup_user(name).unwrap();
        let gid = group_gid(name).unwrap();
        assert_eq!(kept.gid, gid, "{name}: the user's primary group is its own");
        for ids in &got {
            assert_eq!(
                *ids, kept,
                "{name}: an engine was handed ids the system no longer has (all: {got:?})"
            );
        }
    }
}
