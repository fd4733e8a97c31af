//! The rule for a path inside a site, as it travels on the wire: the site-file hub and
//! every replica (`sitesync`, role-web) check each path of a change, a manifest or a
//! request with [`check_path`] before touching the disk. (The module once also held the
//! legacy content sync's manifest, removed with it; the site-file replication format is
//! in [`crate::sitesync`].)

/// Checks a path inside a site: relative, `/`-separated, no empty, `.` or `..` component,
/// no NUL, at most 4096 bytes. Both ends apply it, so a path from the wire can never
/// leave the site folder.
pub fn check_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert!(check_path("a/b.txt"));
        assert!(check_path(&"a".repeat(4096)));
        assert!(!check_path(&"a".repeat(4097)));
        for p in ["", "/a", "a/../b", "..", "a//b", "./a", "a/\0b", "a/"] {
            assert!(!check_path(p), "{p:?}");
        }
    }
}
