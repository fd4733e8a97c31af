//! Tests of the cron rules: parsing, refusals with their field and rule, and
//! next-fire times against a brute-force walk over minutes.

use super::*;
use proptest::prelude::*;

/// 2026-12-07 00:00 UTC (a Monday), in minutes since the epoch.
const MON: i64 = 20_794 * 1440;

fn fires_at(s: &str, minute: i64) -> bool {
    CronSchedule::parse(s).unwrap().fires(minute)
}

#[test]
fn civil_dates_are_right() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(20_794), (2026, 12, 7));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(Civil::of(MON).weekday, 1);
    assert_eq!(Civil::of(0).weekday, 4);
}

#[test]
fn fields_lists_ranges_steps_and_names() {
    assert!(fires_at("*/5 * * * *", MON + 10));
    assert!(!fires_at("*/5 * * * *", MON + 11));
    assert!(fires_at("1,15,30 * * * *", MON + 15));
    assert!(fires_at("10-40/10 * * * *", MON + 40));
    assert!(!fires_at("10-40/10 * * * *", MON + 50));
    assert!(fires_at("0 0 * dec mon", MON));
    assert!(fires_at("0 0 * * 1-5", MON));
    assert!(!fires_at("0 0 * * sat,sun", MON));
    assert!(fires_at("0 0 * * 7", MON + 6 * 1440), "7 is Sunday");
    assert!(fires_at("@daily", MON));
    assert!(fires_at("@hourly", MON + 60));
    assert!(!fires_at("@hourly", MON + 61));
    assert!(fires_at("@weekly", MON + 6 * 1440));
    assert!(fires_at("@monthly", MON - 6 * 1440));
    assert!(fires_at("@yearly", MON + 25 * 1440));
    // Day-of-month and day-of-week both restricted: either matches.
    assert!(fires_at("0 0 1 * mon", MON));
    assert!(fires_at("0 0 7 * fri", MON));
    assert!(!fires_at("0 0 8 * fri", MON));
    // Only one restricted: both must match.
    assert!(!fires_at("0 0 8 * *", MON));
    assert!(!fires_at("0 0 * * fri", MON));
    assert_eq!(
        CronSchedule::parse("  */5   *  * * * ").unwrap().as_str(),
        "*/5 * * * *"
    );
}

#[test]
fn bad_schedules_name_the_field_and_rule() {
    let err = |s: &str| CronSchedule::parse(s).unwrap_err();
    let e = err("61 * * * *");
    assert_eq!(e.rule, "cron_range");
    assert!(e.message.starts_with("minute:"), "{}", e.message);
    assert!(err("* 24 * * *").message.starts_with("hour:"));
    assert!(err("* * 0 * *").message.starts_with("day-of-month:"));
    assert!(err("* * * 13 *").message.starts_with("month:"));
    assert!(err("* * * foo *").message.starts_with("month:"));
    assert_eq!(err("* * * * 8").rule, "cron_range");
    assert_eq!(err("* * * *").rule, "cron_fields");
    assert_eq!(err("* * * * * *").rule, "cron_fields");
    assert_eq!(err("*/0 * * * *").rule, "cron_step");
    assert_eq!(err("*/x * * * *").rule, "cron_step");
    assert_eq!(err("5-1 * * * *").rule, "cron_range");
    assert_eq!(err("a * * * *").rule, "cron_value");
    assert_eq!(err("@reboot").rule, "cron_macro");
    assert_eq!(err("0 0 30 feb *").rule, "cron_never");
    assert_eq!(err("0 0 31 4,6 *").rule, "cron_never");
    assert!(CronSchedule::parse("0 0 29 feb *").is_ok());
    assert!(
        CronSchedule::parse("0 0 30 feb mon").is_ok(),
        "fires on Mondays"
    );
    assert_eq!(err("").rule, "cron_fields");
    assert_eq!(err(&"1,".repeat(600)).rule, "too_long");
}

#[test]
fn commands_have_no_shell() {
    let php = |s: &str| match CronCommand::parse(s).unwrap() {
        CronCommand::Php { script, args } => (script.to_string(), args),
        c => panic!("{c:?}"),
    };
    assert_eq!(php("php wp-cron.php"), ("wp-cron.php".into(), vec![]));
    assert_eq!(
        php(r#"php bin/console app:run 'a b' "c \"d\"" e\ f"#),
        (
            "bin/console".into(),
            vec![
                "app:run".into(),
                "a b".into(),
                "c \"d\"".into(),
                "e f".into()
            ]
        )
    );
    assert_eq!(
        CronCommand::parse("GET /cron.php?x=1").unwrap(),
        CronCommand::Get {
            path: "/cron.php?x=1".into()
        }
    );
    let err = |s: &str| CronCommand::parse(s).unwrap_err().rule;
    assert_eq!(err("php ../etc/passwd"), "dot_part");
    assert_eq!(err("php /etc/passwd"), "absolute");
    assert_eq!(err("sh -c 'rm -rf /'"), "cron_command");
    assert_eq!(err("php"), "cron_command");
    assert_eq!(err("php -r 'echo 1;'"), "cron_command");
    assert_eq!(err("php 'a.php"), "cron_quote");
    assert_eq!(err("php a.php\nrm"), "bad_character");
    assert_eq!(err("GET http://x/"), "cron_command");
    assert_eq!(err("GET //evil/"), "cron_command");
    assert_eq!(err(""), "cron_command");
}

/// The first firing minute after `t` found by looking at every minute.
fn brute_next(s: &CronSchedule, t: i64, limit: i64) -> Option<i64> {
    (t + 1..=t + limit).find(|&m| s.fires(m))
}

fn part(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        (0..=max).prop_map(|v| v.to_string()),
        (0..=max, 0..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (1..=max.max(1)).prop_map(|s| format!("*/{s}")),
        prop::collection::vec(0..=max, 1..4).prop_map(|v| v
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")),
    ]
}

fn schedule() -> impl Strategy<Value = String> {
    // Days and months kept to values that exist in every month, hours to a few
    // so the brute-force walk stays short.
    (part(59), part(23), part(28), part(12), part(7)).prop_map(|(m, h, d, mo, w)| {
        let fix = |p: String, lo: u32| if p == "0" && lo == 1 { "1".into() } else { p };
        format!(
            "{m} {h} {} {} {w}",
            fix(d.replace("0-", "1-"), 1),
            fix(mo.replace("0-", "1-"), 1)
        )
    })
}

proptest! {
    /// `next_after` equals the first firing minute found by walking minutes
    /// (within the ~2 months the walk covers).
    #[test]
    fn next_fire_matches_a_minute_walk(s in schedule(), t in 0i64..(60 * 365 * 1440)) {
        let Ok(sched) = CronSchedule::parse(&s) else { return Ok(()) };
        let limit = 62 * 1440;
        let brute = brute_next(&sched, t, limit);
        let next = sched.next_after(t);
        match brute {
            Some(b) => prop_assert_eq!(next, Some(b), "{}", s),
            None => prop_assert!(next.is_none_or(|n| n > t + limit), "{}", s),
        }
        if let Some(n) = next {
            prop_assert!(sched.fires(n));
        }
    }

    /// A schedule written back parses to the same schedule.
    #[test]
    fn schedules_round_trip(s in schedule()) {
        if let Ok(sched) = CronSchedule::parse(&s) {
            prop_assert_eq!(CronSchedule::parse(sched.as_str()).unwrap(), sched);
        }
    }

    /// A command written back splits to the same words.
    #[test]
    fn commands_round_trip(args in prop::collection::vec("[ -~]{0,12}", 0..5)) {
        let c = CronCommand::Php { script: SitePath::new("cron.php").unwrap(), args };
        prop_assert_eq!(CronCommand::parse(&c.to_string()).unwrap(), c);
    }

    /// Parsing never panics on any text.
    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = CronSchedule::parse(&s);
        let _ = CronCommand::parse(&s);
    }
}
