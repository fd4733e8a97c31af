//! Duplicate suppression for mail relayed by a secondary MX. The secondary tags
//! each queued copy with `X-Hostplane-Relay-Id: <queue id>.<128 random bits>`; the
//! receiving primary records `blake3(relay id, recipients)` as an fsynced marker
//! file under `<state_dir>/dedup/` after storing the mail and before its 250, and
//! answers 250 without storing again when the same copy arrives a second time
//! (the secondary crashed between the primary's 250 and removing its queue entry).
//! The random part makes ids unguessable, so nobody can pre-empt a real delivery.
//! Markers older than [`MAX_AGE`] are pruned at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

/// Header name of the relay id.
pub const HEADER: &str = "X-Hostplane-Relay-Id";
/// How long markers are kept.
pub const MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// `message` with a fresh relay id header in front.
pub fn tag(queue_id: &str, message: &[u8]) -> Vec<u8> {
    let mut r = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut r);
    let token: String = r.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = format!("{HEADER}: {queue_id}.{token}\r\n").into_bytes();
    out.extend_from_slice(message);
    out
}

/// The relay id in the header section of `message`, if any (the first one).
pub fn relay_id(message: &[u8]) -> Option<String> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    message[..end].split(|&b| b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim_end();
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case(HEADER)
            .then(|| value.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The marker path of (`id`, `rcpts`).
pub fn marker(state_dir: &Path, id: &str, rcpts: &[String]) -> PathBuf {
    let mut h = blake3::Hasher::new();
    h.update(id.as_bytes());
    let mut r = rcpts.to_vec();
    r.sort();
    for x in r {
        h.update(b"\0");
        h.update(x.as_bytes());
    }
    state_dir.join("dedup").join(h.finalize().to_hex().as_str())
}

/// Record a marker durably.
pub fn record(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        let f = std::fs::File::create(path)?;
        f.sync_all()?;
        durable::sync_dir(dir)?;
    }
    Ok(())
}

/// Remove markers older than [`MAX_AGE`] (best effort).
pub fn prune(state_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(state_dir.join("dedup")) else {
        return;
    };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > MAX_AGE);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_and_unique() {
        let a = tag("q1", b"Subject: x\r\n\r\nbody\r\n");
        let b = tag("q1", b"Subject: x\r\n\r\nbody\r\n");
        let (ia, ib) = (relay_id(&a).unwrap(), relay_id(&b).unwrap());
        assert!(ia.starts_with("q1."));
        assert_ne!(ia, ib);
        assert_eq!(
            relay_id(b"Subject: x\r\n\r\nX-Hostplane-Relay-Id: body\r\n"),
            None
        );
        let d = Path::new("/s");
        assert_eq!(
            marker(d, "i", &["b".into(), "a".into()]),
            marker(d, "i", &["a".into(), "b".into()])
        );
        assert_ne!(marker(d, "i", &["a".into()]), marker(d, "i", &["b".into()]));
    }
}
