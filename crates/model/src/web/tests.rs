//! Rules of a site's web settings: document roots never escape, PHP values stay in
//! their ranges and the plan's ceilings, stored sites without settings load.

use proptest::prelude::*;

use super::*;

fn dr(s: &str) -> Option<String> {
    DocRoot::parse(s).unwrap().map(|d| d.as_str().to_owned())
}

fn rule(s: &str) -> &'static str {
    DocRoot::parse(s).unwrap_err().rule
}

#[test]
fn docroots_are_normalised() {
    assert_eq!(dr("public"), Some("public".into()));
    assert_eq!(dr("public/"), Some("public".into()));
    assert_eq!(dr("./web/./public"), Some("web/public".into()));
    assert_eq!(dr("/"), None);
    assert_eq!(dr("."), None);
    assert_eq!(dr("./"), None);
    assert_eq!(dr(".env-dir"), Some(".env-dir".into()));
    assert_eq!(dr("a..b"), Some("a..b".into()));
}

#[test]
fn docroots_that_leave_the_tree_are_refused() {
    assert_eq!(rule("/public"), "absolute");
    assert_eq!(rule("/etc"), "absolute");
    assert_eq!(rule(".."), "dot_dot");
    assert_eq!(rule("public/../.."), "dot_dot");
    assert_eq!(rule("a//b"), "empty_part");
    assert_eq!(rule(""), "empty");
    assert_eq!(rule("pub\nlic"), "bad_character");
    assert_eq!(rule("pub\0lic"), "bad_character");
    assert_eq!(rule("..\\x"), "bad_character");
    assert_eq!(rule(&"a".repeat(256)), "name_too_long");
    assert!(DocRoot::parse(&"a".repeat(255)).is_ok());
    let long = vec!["a".repeat(200); 6].join("/");
    assert_eq!(rule(&long), "too_long");
}

proptest! {
    /// Whatever the input, an accepted document root is relative, has no `..`,
    /// `.` or empty part, no control character, and is its own normal form.
    #[test]
    fn no_accepted_docroot_escapes(s in "[a-z./\\\\\\x00\\n]{0,24}") {
        if let Ok(Some(d)) = DocRoot::parse(&s) {
            let t = d.as_str();
            prop_assert!(!t.starts_with('/'));
            prop_assert!(!t.ends_with('/'));
            for part in t.split('/') {
                prop_assert!(!part.is_empty() && part != "." && part != "..");
            }
            prop_assert!(!t.chars().any(char::is_control));
            prop_assert_eq!(DocRoot::parse(t).unwrap(), Some(d.clone()));
            // Joined to a tree, it stays below it, lexically.
            let joined = std::path::Path::new("/tree").join(t);
            let mut depth = 0i32;
            for c in joined.strip_prefix("/tree").unwrap().components() {
                match c {
                    std::path::Component::Normal(_) => depth += 1,
                    _ => depth -= 100,
                }
            }
            prop_assert!(depth > 0);
        }
    }

    /// Any text at all: parsing never panics, and a normal form is reparsed to itself.
    #[test]
    fn docroot_parse_is_total(s in any::<String>()) {
        if let Ok(Some(d)) = DocRoot::parse(&s) {
            prop_assert_eq!(DocRoot::parse(d.as_str()).unwrap(), Some(d));
        }
    }
}

#[test]
fn php_versions() {
    for ok in ["8.2", "7.4", "8.10", "5.6", "9.0"] {
        assert!(PhpVersion::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "8", "8.", ".2", "8.2.1", "4.4", "10.0", "8.02", "8.x", " 8.2", "8.2\n",
    ] {
        assert_eq!(
            PhpVersion::new(bad).unwrap_err().rule,
            "bad_php_version",
            "{bad}"
        );
    }
}

#[test]
fn php_values_are_typed_ranged_and_normalised() {
    let c = PhpCeilings::default();
    let mut p = PhpSettings::default();
    p.set("upload_max_filesize", "64", &c).unwrap();
    p.set("post_max_size", "1g", &c).unwrap_err();
    p.set("post_max_size", "128m", &c).unwrap();
    p.set("memory_limit", "256M", &c).unwrap();
    p.set("max_execution_time", "120s", &c).unwrap();
    p.set("display_errors", "Yes", &c).unwrap();
    p.set("date.timezone", "Europe/Berlin", &c).unwrap();
    p.set("output_buffering", "4096", &c).unwrap();
    assert_eq!(p.ini["upload_max_filesize"], "64M");
    assert_eq!(p.ini["post_max_size"], "128M");
    assert_eq!(p.ini["max_execution_time"], "120");
    assert_eq!(p.ini["display_errors"], "on");
    p.check().unwrap();
    assert_eq!(
        p.pool_lines(),
        vec![
            "php_value[date.timezone] = Europe/Berlin",
            "php_flag[display_errors] = on",
            "php_admin_value[max_execution_time] = 120",
            "php_admin_value[memory_limit] = 256M",
            "php_value[output_buffering] = 4096",
            "php_admin_value[post_max_size] = 128M",
            "php_admin_value[upload_max_filesize] = 64M",
        ]
    );
    p.unset("display_errors").unwrap();
    assert!(!p.ini.contains_key("display_errors"));
}

#[test]
fn php_values_out_of_range_over_plan_or_unknown_are_refused() {
    let c = PhpCeilings::default();
    let mut p = PhpSettings::default();
    let err = |p: &mut PhpSettings, k: &str, v: &str| p.set(k, v, &c).unwrap_err().rule;
    assert_eq!(err(&mut p, "memory_limit", "8M"), "out_of_range");
    assert_eq!(err(&mut p, "memory_limit", "1024M"), "over_plan");
    assert_eq!(err(&mut p, "memory_limit", "-1"), "bad_php_value");
    assert_eq!(err(&mut p, "upload_max_filesize", "300M"), "over_plan");
    assert_eq!(err(&mut p, "max_execution_time", "0"), "out_of_range");
    assert_eq!(err(&mut p, "max_execution_time", "301"), "over_plan");
    assert_eq!(err(&mut p, "max_input_vars", "99"), "out_of_range");
    assert_eq!(err(&mut p, "display_errors", "maybe"), "bad_php_value");
    assert_eq!(
        err(&mut p, "date.timezone", "Mars/Olympus"),
        "bad_php_value"
    );
    assert_eq!(
        err(&mut p, "date.timezone", "Europe/Berlin\nx=1"),
        "bad_php_value"
    );
    assert_eq!(err(&mut p, "default_charset", "UTF-8;x"), "bad_php_value");
    assert_eq!(err(&mut p, "disable_functions", ""), "unknown_php_setting");
    assert_eq!(err(&mut p, "open_basedir", "/"), "unknown_php_setting");
    assert_eq!(
        p.unset("open_basedir").unwrap_err().rule,
        "unknown_php_setting"
    );
    p.set("upload_max_filesize", "100M", &c).unwrap();
    assert_eq!(err(&mut p, "post_max_size", "50M"), "post_below_upload");
    // A bigger plan allows more.
    let big = PhpCeilings {
        memory_mb: 2048,
        upload_mb: 1024,
        execution_s: 3600,
    };
    p.set("memory_limit", "1G", &big).unwrap();
    assert_eq!(p.ini["memory_limit"], "1024M");
    // Every documented key's help names it; the list has no duplicate.
    let mut keys: Vec<_> = INI_KEYS.iter().map(|s| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), INI_KEYS.len());
}

#[test]
fn stored_values_are_checked_by_the_engine_rule() {
    let mut p = PhpSettings::default();
    p.ini
        .insert("memory_limit".into(), "256M\nphp_admin_value[x]=1".into());
    assert!(p.check().is_err());
    let mut p = PhpSettings::default();
    p.ini.insert("open_basedir".into(), "/".into());
    assert_eq!(p.check().unwrap_err().rule, "unknown_php_setting");
    let mut p = PhpSettings::default();
    p.ini.insert("memory_limit".into(), "256".into());
    assert_eq!(p.check().unwrap_err().rule, "not_normal");
    // Above today's plan ceiling but within the key's range: loads (a lowered
    // plan does not break a site), the engine keeps it.
    let mut p = PhpSettings::default();
    p.ini.insert("memory_limit".into(), "4096M".into());
    p.check().unwrap();
}

#[test]
fn sites_without_settings_store_and_load_unchanged() {
    let w = WebSettings::default();
    assert!(w.is_default());
    let site: crate::entity::Site =
        serde_json::from_str(r#"{"domain":1,"mode":"single","php":true}"#).unwrap();
    assert!(site.web.is_default());
    let json = serde_json::to_string(&site).unwrap();
    assert!(!json.contains("\"web\""), "{json}");
    let mut site = site;
    site.web.docroot = DocRoot::parse("public").unwrap();
    site.web.hsts = true;
    site.web.php.version = Some(PhpVersion::new("8.2").unwrap());
    let json = serde_json::to_string(&site).unwrap();
    assert!(
        json.contains(r#""web":{"docroot":"public","hsts":true,"php":{"version":"8.2"}}"#),
        "{json}"
    );
    let back: crate::entity::Site = serde_json::from_str(&json).unwrap();
    assert_eq!(back, site);
}
