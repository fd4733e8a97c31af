//! The pure parts of the cron runner: what this server holds, what a minute starts.

use super::*;
use crate::plan::{render, Layout};
use proto::agent_v1::{WebCron, WebCronJob, WebSite};

fn site(domain: &str, holder: Option<&str>, jobs: &[(u32, &str, &str)]) -> WebSite {
    let mut s: WebSite = serde_json::from_value(serde_json::json!({
        "domain": domain, "mode": "all", "active": true, "php": true,
    }))
    .unwrap();
    s.cron = Some(WebCron {
        holder: holder.map(str::to_owned),
        not_before: 0,
        timeout_s: 30,
        jobs: jobs
            .iter()
            .map(|(id, s, c)| WebCronJob {
                id: *id,
                schedule: (*s).into(),
                command: (*c).into(),
            })
            .collect(),
    });
    s
}

fn held(cfg: &WebConfig, me: &str) -> (Vec<CronSite>, Vec<String>) {
    let (plan, rejected) = render(cfg, &Layout::under(Path::new("/st")), &Plan::default());
    assert!(rejected.is_empty(), "{rejected:?}");
    cron_sites(cfg, &plan, me)
}

use std::path::Path;

#[test]
fn a_server_holds_only_the_sites_naming_it() {
    let cfg = WebConfig {
        sites: vec![
            site(
                "a.example",
                Some("web-1"),
                &[(1, "* * * * *", "php cron.php")],
            ),
            site(
                "b.example",
                Some("web-2"),
                &[(1, "* * * * *", "php cron.php")],
            ),
            site("c.example", None, &[(1, "* * * * *", "php cron.php")]),
            site(
                "d.example",
                Some("web-1"),
                &[(1, "* * * * *", "sh x"), (2, "@daily", "GET /x")],
            ),
        ]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        ..WebConfig::default()
    };
    let (sites, warnings) = held(&cfg, "web-1");
    let names: Vec<&str> = sites.iter().map(|s| s.domain.as_str()).collect();
    assert_eq!(names, ["a.example", "d.example"]);
    assert_eq!(sites[0].tree, Path::new("/st/content/a.example/current"));
    assert!(sites[0].php.is_some());
    assert_eq!(sites[0].timeout, Duration::from_secs(30));
    assert_eq!(
        sites[1].jobs.len(),
        1,
        "the job that does not parse is left out"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(held(&cfg, "web-3").0.is_empty());
}

#[test]
fn php_runs_with_the_pools_values() {
    let mut a = site(
        "a.example",
        Some("web-1"),
        &[(1, "* * * * *", "php cron.php")],
    );
    a.php_ini = [("memory_limit".to_owned(), "256M".to_owned())].into();
    let cfg = WebConfig {
        sites: vec![a].into_iter().map(std::sync::Arc::new).collect(),
        ..WebConfig::default()
    };
    let (sites, _) = held(&cfg, "web-1");
    let v = pool_values(sites[0].php.as_ref().unwrap());
    let get = |k: &str| v.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("open_basedir"),
        Some("/st/content/a.example/:/st/php/tmp/a.example/")
    );
    assert!(get("disable_functions").unwrap().contains("exec"));
    assert_eq!(get("memory_limit"), Some("256M"));
    assert_eq!(get("sys_temp_dir"), Some("/st/php/tmp/a.example"));
    assert!(get("session.save_path").is_some());
}

#[test]
fn a_minute_runs_what_fires_unless_lease_handover_or_still_running() {
    let cfg = WebConfig {
        sites: vec![site(
            "a.example",
            Some("web-1"),
            &[
                (1, "*/5 * * * *", "php a.php"),
                (2, "* * * * *", "php b.php"),
            ],
        )]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        ..WebConfig::default()
    };
    let (mut sites, _) = held(&cfg, "web-1");
    let minute = 29_000_000; // divisible by 5
    let none = HashSet::new();
    assert_eq!(
        due(&sites, minute, minute * 60, true, &none),
        vec![
            Action::Run { site: 0, job: 0 },
            Action::Run { site: 0, job: 1 }
        ]
    );
    assert_eq!(
        due(&sites, minute + 1, minute * 60, true, &none),
        vec![Action::Run { site: 0, job: 1 }]
    );
    let skipped = |a: &[Action]| {
        a.iter()
            .filter_map(|a| match a {
                Action::Skip { reason, .. } => Some(reason.clone()),
                Action::Run { .. } => None,
            })
            .collect::<Vec<_>>()
    };
    let no_lease = due(&sites, minute + 1, minute * 60, false, &none);
    assert!(skipped(&no_lease)[0].contains("no valid lease"));
    let busy: HashSet<(String, u32)> = [("a.example".to_owned(), 2)].into();
    let a = due(&sites, minute, minute * 60, true, &busy);
    assert_eq!(a[0], Action::Run { site: 0, job: 0 });
    assert!(skipped(&a)[0].contains("still going"));
    sites[0].not_before = minute * 60 + 90;
    let a = due(&sites, minute + 1, minute * 60 + 60, true, &none);
    assert!(skipped(&a)[0].contains("moved here"), "{a:?}");
    assert_eq!(
        due(&sites, minute + 2, minute * 60 + 120, true, &none),
        vec![Action::Run { site: 0, job: 1 }]
    );
}
