//! The directory watch table: which inotify watch descriptor is which directory of which
//! site, kept true across directory renames, removals and moves out of the tree.
//!
//! Pure bookkeeping, no I/O: the engine adds and removes the kernel watches and tells the
//! table. Each site keeps its directories in a `BTreeMap` ordered by path components, so a
//! directory and everything below it are one contiguous range (a rename of a directory with
//! 10,000 subdirectories rewrites exactly those entries).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::debounce::SiteId;

/// An inotify watch descriptor number.
pub(crate) type Wd = i32;

/// One watched site.
#[derive(Debug)]
pub(crate) struct Site {
    pub name: String,
    pub root: PathBuf,
    /// Relative paths never watched nor reported (caches).
    pub local: Vec<PathBuf>,
    /// Watched directories, relative to the root ("" is the root).
    pub dirs: BTreeMap<PathBuf, Wd>,
}

impl Site {
    /// Is `rel` a local path or inside one?
    pub(crate) fn is_local(&self, rel: &Path) -> bool {
        self.local.iter().any(|l| rel.starts_with(l))
    }
}

/// All sites' watches.
#[derive(Debug, Default)]
pub(crate) struct WatchTable {
    by_wd: HashMap<Wd, (SiteId, PathBuf)>,
    sites: HashMap<SiteId, Site>,
    by_name: HashMap<String, SiteId>,
    next_site: SiteId,
}

impl WatchTable {
    /// Register a site (no watches yet) and return its number.
    pub(crate) fn add_site(&mut self, name: &str, root: PathBuf, local: Vec<PathBuf>) -> SiteId {
        let id = self.next_site;
        self.next_site = self.next_site.wrapping_add(1);
        self.sites.insert(
            id,
            Site {
                name: name.to_string(),
                root,
                local,
                dirs: BTreeMap::new(),
            },
        );
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Forget a site; returns its watch descriptors (for the kernel to drop).
    pub(crate) fn remove_site(&mut self, name: &str) -> Option<(SiteId, Vec<Wd>)> {
        let id = self.by_name.remove(name)?;
        let site = self.sites.remove(&id)?;
        let wds: Vec<Wd> = site.dirs.values().copied().collect();
        for wd in &wds {
            if self.by_wd.get(wd).is_some_and(|(s, _)| *s == id) {
                self.by_wd.remove(wd);
            }
        }
        Some((id, wds))
    }

    pub(crate) fn site(&self, id: SiteId) -> Option<&Site> {
        self.sites.get(&id)
    }

    #[cfg(test)]
    pub(crate) fn site_id(&self, name: &str) -> Option<SiteId> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn site_ids(&self) -> Vec<SiteId> {
        self.sites.keys().copied().collect()
    }

    /// Number of watched directories over all sites.
    pub(crate) fn len(&self) -> usize {
        self.by_wd.len()
    }

    /// Record that `wd` watches directory `rel` of `site`. A descriptor the kernel hands out
    /// again for another path (the same inode reached another way, or a path whose old
    /// directory was replaced while events were lost) is moved to the new path.
    pub(crate) fn insert(&mut self, site: SiteId, rel: &Path, wd: Wd) {
        if let Some((old_site, old_rel)) = self.by_wd.remove(&wd) {
            if let Some(s) = self.sites.get_mut(&old_site) {
                if s.dirs.get(&old_rel) == Some(&wd) {
                    s.dirs.remove(&old_rel);
                }
            }
        }
        let Some(s) = self.sites.get_mut(&site) else {
            return;
        };
        if let Some(old) = s.dirs.insert(rel.to_path_buf(), wd) {
            if old != wd {
                self.by_wd.remove(&old);
            }
        }
        self.by_wd.insert(wd, (site, rel.to_path_buf()));
    }

    /// Which site and directory `wd` watches.
    pub(crate) fn lookup(&self, wd: Wd) -> Option<(SiteId, &Path)> {
        self.by_wd.get(&wd).map(|(s, p)| (*s, p.as_path()))
    }

    /// The kernel dropped `wd` (`IN_IGNORED`): forget it. Returns its site and directory.
    pub(crate) fn forget_wd(&mut self, wd: Wd) -> Option<(SiteId, PathBuf)> {
        let (site, rel) = self.by_wd.remove(&wd)?;
        if let Some(s) = self.sites.get_mut(&site) {
            if s.dirs.get(&rel) == Some(&wd) {
                s.dirs.remove(&rel);
            }
        }
        Some((site, rel))
    }

    fn subtree(dirs: &BTreeMap<PathBuf, Wd>, top: &Path) -> Vec<PathBuf> {
        dirs.range(top.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(top))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// A directory left the tree (moved out): forget it and everything below it; returns
    /// their watch descriptors (for the kernel to drop).
    pub(crate) fn remove_subtree(&mut self, site: SiteId, top: &Path) -> Vec<Wd> {
        let Some(s) = self.sites.get_mut(&site) else {
            return Vec::new();
        };
        let mut wds = Vec::new();
        for p in Self::subtree(&s.dirs, top) {
            if let Some(wd) = s.dirs.remove(&p) {
                self.by_wd.remove(&wd);
                wds.push(wd);
            }
        }
        wds
    }

    /// A directory was renamed inside its site: rewrite it and everything below it. Returns
    /// the watch of a directory the rename replaced (renamed over an empty directory).
    pub(crate) fn rename_subtree(&mut self, site: SiteId, from: &Path, to: &Path) -> Option<Wd> {
        let s = self.sites.get_mut(&site)?;
        let victim = s.dirs.remove(to);
        if let Some(v) = victim {
            self.by_wd.remove(&v);
        }
        for p in Self::subtree(&s.dirs, from) {
            let Some(wd) = s.dirs.remove(&p) else {
                continue;
            };
            let rest = p
                .strip_prefix(from)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            s.dirs.insert(new.clone(), wd);
            self.by_wd.insert(wd, (site, new));
        }
        victim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn table() -> (WatchTable, SiteId) {
        let mut t = WatchTable::default();
        let id = t.add_site("example.com", p("/srv/example.com"), vec![p("cache")]);
        for (i, d) in ["", "a", "a/b", "a/b/c", "a.b", "ab", "z"]
            .iter()
            .enumerate()
        {
            t.insert(id, &p(d), i as Wd + 1);
        }
        (t, id)
    }

    #[test]
    fn renaming_a_directory_rewrites_exactly_its_subtree() {
        let (mut t, id) = table();
        t.rename_subtree(id, &p("a"), &p("y/a2"));
        assert_eq!(t.lookup(2), Some((id, p("y/a2").as_path())));
        assert_eq!(t.lookup(3), Some((id, p("y/a2/b").as_path())));
        assert_eq!(t.lookup(4), Some((id, p("y/a2/b/c").as_path())));
        assert_eq!(
            t.lookup(5),
            Some((id, p("a.b").as_path())),
            "a sibling sharing a prefix"
        );
        assert_eq!(t.lookup(6), Some((id, p("ab").as_path())));
        assert_eq!(t.len(), 7);
    }

    #[test]
    fn removing_a_subtree_returns_its_descriptors() {
        let (mut t, id) = table();
        let mut wds = t.remove_subtree(id, &p("a"));
        wds.sort();
        assert_eq!(wds, vec![2, 3, 4]);
        assert_eq!(t.lookup(3), None);
        assert_eq!(t.len(), 4);
        let (_, rest) = t.remove_site("example.com").expect("site");
        assert_eq!(rest.len(), 4);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_descriptor_handed_out_again_moves_to_its_new_path() {
        let (mut t, id) = table();
        t.insert(id, &p("z2"), 7);
        assert_eq!(t.lookup(7), Some((id, p("z2").as_path())));
        assert!(!t.site(id).expect("site").dirs.contains_key(&p("z")));
        // A path whose directory was replaced gets the new descriptor.
        t.insert(id, &p("ab"), 40);
        assert_eq!(t.lookup(6), None);
        assert_eq!(t.lookup(40), Some((id, p("ab").as_path())));
    }

    #[test]
    fn local_paths_cover_their_subtree_only() {
        let (t, id) = table();
        let s = t.site(id).expect("site");
        assert!(s.is_local(&p("cache")));
        assert!(s.is_local(&p("cache/x/y")));
        assert!(!s.is_local(&p("cache2")));
        assert!(!s.is_local(&p("a/cache")));
    }
}
