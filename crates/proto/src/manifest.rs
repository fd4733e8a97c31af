//! The content-sync wire format: a site's manifest as the files origin serves it at
//! `GET /v1/sync/<domain>/manifest` and sync clients (files servers, web servers) read
//! it. Every regular file of a site with its size, mode and BLAKE3 hash; the origin
//! builds it (`role_files::manifest::build_files`), clients check each path with
//! [`check_path`] before touching the disk.

use serde::{Deserialize, Serialize};

/// The content of one site as the origin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The site.
    pub domain: String,
    /// The origin's change counter when the manifest was made.
    pub version: u64,
    /// Every file, sorted by path.
    pub files: Vec<FileEntry>,
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators, no `.` or `..` components.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Unix permission bits (`& 0o777`).
    pub mode: u32,
    /// BLAKE3 of the content, lower-case hex.
    pub blake3: String,
}

/// Checks a manifest path: relative, `/`-separated, no empty, `.` or `..` component,
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

    #[test]
    fn manifest_json_shape_is_stable() {
        let m = Manifest {
            domain: "a.example".into(),
            version: 7,
            files: vec![FileEntry {
                path: "index.html".into(),
                size: 5,
                mode: 0o644,
                blake3: "ab".into(),
            }],
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"domain":"a.example","version":7,"files":[{"path":"index.html","size":5,"mode":420,"blake3":"ab"}]}"#
        );
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }
}
