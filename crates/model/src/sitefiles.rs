//! A site's file settings (issue 14): the paths that survive deployments (`keep`),
//! the paths each web server keeps to itself (`local`), restores asked through the
//! API and the SQLite databases last reported in the tree.
//!
//! The path rules live here once: the API checks requests with [`PathClasses::new`],
//! and engines can check what reaches them with [`SitePath::new`], so a path the API
//! accepts is a path every engine accepts.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{FieldError, Invalid};
use crate::Id;

/// Longest path accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_SITE_PATH_BYTES: usize = 4096;
/// Most paths of one class (keep or local) a site declares: each is matched against
/// every replicated change, so the list stays short.
pub const MAX_SITE_PATHS: usize = 32;
/// Most restores of one site waiting for the files server at once.
pub const MAX_PENDING_RESTORES: usize = 10;
/// Finished restores kept on the site so `site restore` can show their result.
pub const KEPT_FINISHED_RESTORES: usize = 10;
/// Most SQLite paths kept from a report (the files server reports at most 20).
pub const MAX_SQLITE_PATHS: usize = 20;

/// A path inside a site's tree, relative to its root (e.g. `wp-content/uploads`):
/// no empty, `.` or `..` part, no leading `/`, no control characters, at most
/// [`MAX_SITE_PATH_BYTES`]; a trailing `/` is trimmed (the normal form). Unlike
/// [`crate::RelPath`] any other character is allowed: applications name their folders
/// freely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SitePath(String);

impl SitePath {
    /// Validate and normalise a path.
    pub fn new(input: &str) -> Result<Self, Invalid> {
        if input.len() > MAX_SITE_PATH_BYTES {
            return Err(Invalid::new(
                "too_long",
                format!("a path is at most {MAX_SITE_PATH_BYTES} bytes"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(Invalid::new(
                "bad_character",
                "a path cannot contain control characters",
            ));
        }
        if input.starts_with('/') {
            return Err(Invalid::new(
                "absolute",
                format!("`{input}` is absolute; give the path relative to the site's root, e.g. `wp-content/uploads`"),
            ));
        }
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(Invalid::new(
                "empty",
                "the path is empty; name a folder or file inside the site, e.g. `wp-content/uploads`",
            ));
        }
        for part in trimmed.split('/') {
            match part {
                "" => return Err(Invalid::new("empty_part", "a path cannot contain `//`")),
                "." | ".." => {
                    return Err(Invalid::new(
                        "dot_part",
                        format!("`{trimmed}` has a `{part}` part; paths stay inside the site and are written without `.` or `..`"),
                    ))
                }
                _ => {}
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The normalised path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SitePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SitePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A site's two path classes, checked together: each list at most
/// [`MAX_SITE_PATHS`] valid paths without duplicates, and no path in both (a path is
/// either shared and kept, or private to each web server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathClasses {
    /// Paths that survive deployments.
    pub keep: Vec<SitePath>,
    /// Paths not replicated.
    pub local: Vec<SitePath>,
}

impl PathClasses {
    /// Check `keep` and `local` as given in a request (fields `keep[i]`, `local[i]`).
    pub fn new(keep: &[String], local: &[String]) -> Result<Self, FieldError> {
        let keep = class("keep", keep)?;
        let local = class("local", local)?;
        if let Some((i, p)) = local.iter().enumerate().find(|(_, p)| keep.contains(p)) {
            return Err(Invalid::new(
                "keep_and_local",
                format!("`{p}` is listed both as kept and as local; a path is either replicated and kept, or local to each web server"),
            )
            .at(format!("local[{i}]")));
        }
        Ok(Self { keep, local })
    }
}

fn class(field: &str, list: &[String]) -> Result<Vec<SitePath>, FieldError> {
    if list.len() > MAX_SITE_PATHS {
        return Err(Invalid::new(
            "too_many",
            format!("a site declares at most {MAX_SITE_PATHS} {field} paths; name parent folders instead"),
        )
        .at(field));
    }
    let mut out: Vec<SitePath> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let p = SitePath::new(raw).map_err(|e| e.at(format!("{field}[{i}]")))?;
        if out.contains(&p) {
            return Err(Invalid::new("duplicate", format!("`{p}` is listed twice"))
                .at(format!("{field}[{i}]")));
        }
        out.push(p);
    }
    Ok(out)
}

/// How a restore request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreState {
    /// Waiting for the files server (it travels in the server's desired config).
    Pending,
    /// The path was brought back.
    Ok,
    /// The files server could not bring it back (`message` says why).
    Failed,
}

impl RestoreState {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// `hostplane site restore DOMAIN PATH [--at TIME]`: one request and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRestore {
    /// Unique id ([`restore_id`]): the files server applies each id once.
    pub id: String,
    /// The path to bring back.
    pub path: SitePath,
    /// The version current at this time (unix seconds); `None`: the last one
    /// replaced or deleted.
    #[serde(default)]
    pub at: Option<i64>,
    /// When it was asked (unix seconds).
    pub requested_at: i64,
    /// Where it stands.
    pub state: RestoreState,
    /// The files server's message once finished.
    #[serde(default)]
    pub message: String,
}

/// The id of a new restore of site `site`: the site's id first, so a result that
/// comes back with only the id finds its site with one read.
pub fn restore_id(site: Id, random: u64) -> String {
    format!("r{site}-{random:016x}")
}

/// The site a restore id belongs to, if it is one [`restore_id`] made.
pub fn restore_site(id: &str) -> Option<Id> {
    let (site, random) = id.strip_prefix('r')?.split_once('-')?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| site.parse().ok())
        .flatten()
}

/// A site's file settings and their state (all empty for a site that never used
/// them, and then not stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFiles {
    /// Paths that survive deployments (`site update --keep`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<SitePath>,
    /// Paths not replicated (`site update --local`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<SitePath>,
    /// Restores: the pending ones (at most [`MAX_PENDING_RESTORES`]) and the last
    /// finished ones (at most [`KEPT_FINISHED_RESTORES`]), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<SiteRestore>,
    /// SQLite databases the files server last reported while the site was `all`
    /// (an event was recorded for this set; a new set records another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_paths: Vec<String>,
}

impl SiteFiles {
    /// Nothing set: not stored.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Restores still waiting for the files server.
    pub fn pending(&self) -> impl Iterator<Item = &SiteRestore> {
        self.restores
            .iter()
            .filter(|r| r.state == RestoreState::Pending)
    }

    /// Record the result of restore `id`; returns whether it was pending. Finished
    /// restores beyond [`KEPT_FINISHED_RESTORES`] are forgotten, oldest first.
    pub fn finish(&mut self, id: &str, ok: bool, message: &str) -> bool {
        let Some(r) = self
            .restores
            .iter_mut()
            .find(|r| r.id == id && r.state == RestoreState::Pending)
        else {
            return false;
        };
        r.state = if ok {
            RestoreState::Ok
        } else {
            RestoreState::Failed
        };
        r.message = message.chars().take(1024).collect();
        let finished = self
            .restores
            .iter()
            .filter(|r| r.state != RestoreState::Pending)
            .count();
        let mut drop = finished.saturating_sub(KEPT_FINISHED_RESTORES);
        self.restores.retain(|r| {
            if drop > 0 && r.state != RestoreState::Pending {
                drop -= 1;
                false
            } else {
                true
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(keep: &[&str], local: &[&str]) -> (String, &'static str) {
        let k: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        let l: Vec<String> = local.iter().map(|s| s.to_string()).collect();
        let e = PathClasses::new(&k, &l).unwrap_err();
        (e.field, e.rule)
    }

    #[test]
    fn paths_are_normalised_and_checked() {
        assert_eq!(
            SitePath::new("wp-content/uploads/").unwrap().as_str(),
            "wp-content/uploads"
        );
        assert_eq!(
            SitePath::new("dir with space/é").unwrap().as_str(),
            "dir with space/é"
        );
        for (bad, r) in [
            ("", "empty"),
            ("/", "absolute"),
            ("/etc", "absolute"),
            ("a//b", "empty_part"),
            ("a/./b", "dot_part"),
            ("..", "dot_part"),
            ("a/../b", "dot_part"),
            ("a\nb", "bad_character"),
            ("a\0b", "bad_character"),
        ] {
            assert_eq!(SitePath::new(bad).unwrap_err().rule, r, "{bad:?}");
        }
        assert_eq!(
            SitePath::new(&"a".repeat(4097)).unwrap_err().rule,
            "too_long"
        );
        assert!(SitePath::new(&"a".repeat(4096)).is_ok());
    }

    #[test]
    fn classes_name_the_field_and_rule() {
        assert_eq!(rule(&["a", "a/"], &[]), ("keep[1]".into(), "duplicate"));
        assert_eq!(
            rule(&["a"], &["b", "a"]),
            ("local[1]".into(), "keep_and_local")
        );
        assert_eq!(rule(&[], &["x", ".."]), ("local[1]".into(), "dot_part"));
        let many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
        let e = PathClasses::new(&many, &[]).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("keep", "too_many"));
        assert!(PathClasses::new(&many[..32], &many[..0]).is_ok());
    }

    #[test]
    fn sites_stored_before_keep_the_same_shape() {
        let old = r#"{"domain":7,"mode":"single"}"#;
        let site: crate::entity::Site = serde_json::from_str(old).unwrap();
        assert!(site.files.is_empty());
        let back = serde_json::to_value(&site).unwrap();
        assert!(back.get("files").is_none(), "{back}");
        let mut site = site;
        site.files.keep = vec![SitePath::new("uploads").unwrap()];
        let json = serde_json::to_string(&site).unwrap();
        assert!(json.contains(r#""files":{"keep":["uploads"]}"#), "{json}");
        let again: crate::entity::Site = serde_json::from_str(&json).unwrap();
        assert_eq!(again, site);
        // A stored path is checked like a new one.
        let bad = r#"{"domain":7,"mode":"single","files":{"keep":["../x"]}}"#;
        assert!(serde_json::from_str::<crate::entity::Site>(bad).is_err());
    }

    #[test]
    fn restore_ids_name_their_site() {
        let id = restore_id(42, 0xdead);
        assert_eq!(restore_site(&id), Some(42));
        assert_eq!(restore_site("r42-xyz"), None);
        assert_eq!(restore_site("42-000000000000dead"), None);
    }

    #[test]
    fn finished_restores_are_bounded() {
        let mut f = SiteFiles::default();
        for i in 0..15 {
            f.restores.push(SiteRestore {
                id: format!("{i}"),
                path: SitePath::new("a").unwrap(),
                at: None,
                requested_at: 0,
                state: RestoreState::Pending,
                message: String::new(),
            });
        }
        for i in 0..12 {
            assert!(f.finish(&format!("{i}"), i % 2 == 0, "done"));
        }
        assert!(!f.finish("0", true, "again"));
        assert_eq!(f.pending().count(), 3);
        assert_eq!(f.restores.len(), 3 + KEPT_FINISHED_RESTORES);
        assert_eq!(f.restores[0].id, "2");
    }
}
