//! Process limits an agent raises at start. The soft limit on open files defaults to
//! 1,024 on most systems while the hard limit is far higher; like other daemons, the
//! agent raises the soft limit to the hard one, so its role engine (many sites, many
//! connections) is bounded by what the administrator allows, not by a login default.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs what it did. Returns the
/// soft limit in force afterwards (`None`: unlimited). A failure is logged, not fatal:
/// the agent works with the limit it has.
pub fn raise_nofile() -> Option<u64> {
    let now = getrlimit(Resource::Nofile);
    if now.current == now.maximum {
        tracing::info!(limit = ?now.current, "open files limit already at its hard limit");
        return now.current;
    }
    let raised = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = ?now.current, to = ?now.maximum, "raised the open files limit to its hard limit");
            now.maximum
        }
        Err(e) => {
            tracing::warn!(limit = ?now.current, hard = ?now.maximum, error = %e, "cannot raise the open files limit");
            now.current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_one() {
        let hard = getrlimit(Resource::Nofile).maximum;
        assert_eq!(raise_nofile(), hard);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
        // a second call changes nothing
        assert_eq!(raise_nofile(), hard);
    }
}
