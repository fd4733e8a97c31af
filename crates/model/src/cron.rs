//! A site's cron jobs (issue 15): the schedule syntax, the command a job runs, and
//! the pure "which minutes fire" decision the web engine's runner asks each minute.
//!
//! **Schedule.** The standard 5 fields `minute hour day-of-month month day-of-week`
//! (UTC): `*`, numbers, lists `1,15,30`, ranges `1-5`, steps `*/5` and `10-40/10`,
//! month names `jan`–`dec`, day names `sun`–`sat` (`0` and `7` are Sunday), and the
//! macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
//! `@hourly`. As in Vixie cron, when both day-of-month and day-of-week are
//! restricted a day matches either; otherwise both must match. A schedule that can
//! never fire (`0 0 30 feb *`) is refused, naming the field.
//!
//! **Command.** No shell: `php SCRIPT [ARGS]` (SCRIPT a path inside the site's tree,
//! [`SitePath`]: no `..`, not absolute; ARGS split like argv with `'…'`, `"…"` and
//! `\` quoting) or `GET /path` (an HTTP request to the site on the server running it).
//!
//! Pure: the API, the import and the engine use these same rules.

use serde::{Deserialize, Serialize};

use crate::sitefiles::SitePath;
use crate::Invalid;

/// Most bytes of a schedule or a command as written.
pub const MAX_CRON_TEXT: usize = 1024;
/// Most arguments after the script.
pub const MAX_CRON_ARGS: usize = 32;

/// One field's name, as errors name it.
const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
/// Each field's smallest and largest value (day-of-week 7 is read as 0).
const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A checked schedule: for each field the set of values it matches (bit `v`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronSchedule {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Day-of-month was `*` (or `*/1`): only day-of-week restricts the day.
    any_day: bool,
    /// Day-of-week was `*`: only day-of-month restricts the day.
    any_weekday: bool,
}

impl CronSchedule {
    /// Parse and check `input` (5 fields or a macro); the error names the field
    /// and the rule.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let text = input.trim();
        if text.len() > MAX_CRON_TEXT {
            return Err(Invalid::new(
                "too_long",
                format!("a schedule is at most {MAX_CRON_TEXT} bytes"),
            ));
        }
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            m if m.starts_with('@') => {
                return Err(Invalid::new(
                    "cron_macro",
                    format!("unknown macro `{m}`: use @yearly, @monthly, @weekly, @daily or @hourly, or 5 fields"),
                ))
            }
            t => t,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(Invalid::new(
                "cron_fields",
                format!(
                    "a schedule has 5 fields (minute hour day-of-month month day-of-week), e.g. `*/5 * * * *`; `{text}` has {}",
                    parts.len()
                ),
            ));
        }
        let mut sets = [0u64; 5];
        for (i, part) in parts.iter().enumerate() {
            sets[i] = field(i, part)?;
        }
        // Day-of-week 7 is Sunday.
        if sets[4] & (1 << 7) != 0 {
            sets[4] = (sets[4] | 1) & 0x7f;
        }
        let s = Self {
            text: parts.join(" "),
            minutes: sets[0],
            hours: sets[1] as u32,
            days: sets[2] as u32,
            months: sets[3] as u16,
            weekdays: sets[4] as u8,
            any_day: is_star(parts[2]),
            any_weekday: is_star(parts[4]),
        };
        if s.any_weekday || s.any_day {
            let possible = (1..=12u32)
                .filter(|m| s.months & (1 << m) != 0)
                .any(|m| (1..=days_in_month(2000, m)).any(|d| s.days & (1 << d) != 0));
            if !possible {
                return Err(Invalid::new(
                    "cron_never",
                    format!("day-of-month: the schedule `{}` names no day that exists in its months, so it never fires", s.text),
                ));
            }
        }
        Ok(s)
    }

    /// The schedule as written (fields separated by one space; macros expanded).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the schedule fires in minute `unix_minute` (minutes since the Unix
    /// epoch, UTC).
    pub fn fires(&self, unix_minute: i64) -> bool {
        let t = Civil::of(unix_minute);
        self.minutes & (1 << t.minute) != 0
            && self.hours & (1 << t.hour) != 0
            && self.day_matches(&t)
    }

    fn day_matches(&self, t: &Civil) -> bool {
        if self.months & (1 << t.month) == 0 {
            return false;
        }
        let dom = self.days & (1 << t.day) != 0;
        let dow = self.weekdays & (1 << t.weekday) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first minute after `unix_minute` in which the schedule fires (None only
    /// past year 9999). Walks days, not minutes.
    pub fn next_after(&self, unix_minute: i64) -> Option<i64> {
        let start = unix_minute + 1;
        let first = start.div_euclid(1440);
        // A schedule that fires at all fires within 8 years (29 February).
        for day in first..first + 8 * 366 + 2 {
            let t = Civil::of(day * 1440);
            if !self.day_matches(&t) {
                continue;
            }
            let from = if day == first {
                start.rem_euclid(1440)
            } else {
                0
            };
            for m in from..1440 {
                let (h, mi) = (m / 60, m % 60);
                if self.hours & (1 << h) != 0 && self.minutes & (1 << mi) != 0 {
                    return Some(day * 1440 + m);
                }
            }
        }
        None
    }
}

impl std::fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_star(part: &str) -> bool {
    part == "*" || part == "*/1"
}

/// The set of field `i`'s values `part` names.
fn field(i: usize, part: &str) -> Result<u64, Invalid> {
    let name = FIELDS[i];
    let (lo, hi) = BOUNDS[i];
    let mut set = 0u64;
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|&s| s >= 1 && s <= hi)
                    .ok_or_else(|| {
                        Invalid::new(
                            "cron_step",
                            format!("{name}: the step in `{item}` must be a number from 1 to {hi}"),
                        )
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, if i == 4 { 6 } else { hi })
        } else {
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(i, a, item)?, value(i, b, item)?);
                    if a > b {
                        return Err(Invalid::new(
                            "cron_range",
                            format!("{name}: the range `{item}` runs backwards; write the smaller value first"),
                        ));
                    }
                    (a, b)
                }
                None if step > 1 => (value(i, range, item)?, hi),
                None => {
                    let v = value(i, range, item)?;
                    (v, v)
                }
            }
        };
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

/// One value of field `i` (a number, or a month/day name).
fn value(i: usize, s: &str, item: &str) -> Result<u32, Invalid> {
    let name = FIELDS[i];
    let (lo, hi) = BOUNDS[i];
    let lower = s.to_ascii_lowercase();
    let named = match i {
        3 => MONTHS
            .iter()
            .position(|m| *m == lower)
            .map(|p| p as u32 + 1),
        4 => DAYS.iter().position(|d| *d == lower).map(|p| p as u32),
        _ => None,
    };
    if let Some(v) = named {
        return Ok(v);
    }
    let names = match i {
        3 => ", or jan-dec",
        4 => ", or sun-sat (0 and 7 are Sunday)",
        _ => "",
    };
    let v: u32 = s.parse().map_err(|_| {
        Invalid::new(
            "cron_value",
            format!("{name}: `{item}` is not a number from {lo} to {hi}{names}"),
        )
    })?;
    if v < lo || v > hi {
        return Err(Invalid::new(
            "cron_range",
            format!("{name}: {v} is outside {lo}-{hi}"),
        ));
    }
    Ok(v)
}

/// A UTC minute's calendar fields.
struct Civil {
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    /// 0 = Sunday.
    weekday: u32,
}

impl Civil {
    fn of(unix_minute: i64) -> Self {
        let days = unix_minute.div_euclid(1440);
        let m = unix_minute.rem_euclid(1440);
        let (_, month, day) = civil_from_days(days);
        Self {
            month,
            day,
            hour: (m / 60) as u32,
            minute: (m % 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

/// Year, month, day of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// What a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CronCommand {
    /// `php SCRIPT [ARGS]`: php-cli as the site's user with the pool's settings.
    Php {
        /// The script, inside the site's tree.
        script: SitePath,
        /// Its arguments, as argv.
        args: Vec<String>,
    },
    /// `GET /path`: a request to the site on the server running the job.
    Get {
        /// Path and query, starting with `/`.
        path: String,
    },
}

impl CronCommand {
    /// Parse and check a command as written.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.len() > MAX_CRON_TEXT {
            return Err(Invalid::new(
                "too_long",
                format!("a command is at most {MAX_CRON_TEXT} bytes"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(Invalid::new(
                "bad_character",
                "a command cannot contain control characters (no newlines)",
            ));
        }
        let words = split_argv(input)?;
        let usage = || {
            Invalid::new(
                "cron_command",
                "a command is `php SCRIPT [ARGS]` (SCRIPT inside the site, e.g. `php wp-cron.php`) or `GET /path`; there is no shell",
            )
        };
        let (first, rest) = words.split_first().ok_or_else(usage)?;
        match first.as_str() {
            "php" => {
                let (script, args) = rest.split_first().ok_or_else(usage)?;
                if script.starts_with('-') {
                    return Err(Invalid::new(
                        "cron_command",
                        "php options cannot be given; the site's PHP settings apply (`php SCRIPT [ARGS]`)",
                    ));
                }
                let script = SitePath::new(script)?;
                if args.len() > MAX_CRON_ARGS {
                    return Err(Invalid::new(
                        "too_many",
                        format!("at most {MAX_CRON_ARGS} arguments"),
                    ));
                }
                Ok(Self::Php {
                    script,
                    args: args.to_vec(),
                })
            }
            "GET" => match rest {
                [path] if path.starts_with('/') && !path.starts_with("//") => Ok(Self::Get {
                    path: path.clone(),
                }),
                _ => Err(Invalid::new(
                    "cron_command",
                    "`GET` takes one path of the site starting with `/`, e.g. `GET /cron.php?key=1`",
                )),
            },
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for CronCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Php { script, args } => {
                write!(f, "php {}", quote(script.as_str()))?;
                for a in args {
                    write!(f, " {}", quote(a))?;
                }
                Ok(())
            }
            Self::Get { path } => write!(f, "GET {path}"),
        }
    }
}

/// A word quoted so [`split_argv`] gives it back.
fn quote(w: &str) -> String {
    if !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
        return w.to_owned();
    }
    format!("'{}'", w.replace('\'', "'\\''"))
}

/// Split `s` into words like a POSIX shell's argv: whitespace separates,
/// `'…'` is literal, `"…"` allows `\"` and `\\`, `\` outside quotes escapes one
/// character. No expansion of any kind.
pub fn split_argv(s: &str) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(unclosed("'")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(unclosed("\"")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(unclosed("\"")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => {
                        return Err(Invalid::new(
                            "cron_quote",
                            "the command ends with a lone `\\`",
                        ))
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn unclosed(q: &str) -> Invalid {
    Invalid::new(
        "cron_quote",
        format!("a quote {q} is not closed in the command"),
    )
}

/// One cron job as stored on its site ([`crate::entity::Site::cron`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CronJob {
    /// Its number within the site (never reused while the site exists).
    pub id: u32,
    /// The schedule as [`CronSchedule::as_str`] writes it.
    pub schedule: String,
    /// The command as [`CronCommand`]'s `Display` writes it.
    pub command: String,
}

/// Where a site's cron runs: the web server holding it, and from when it may start
/// (when the holder changed: the previous holder's last possible lease end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CronHolder {
    /// The web server (None: no usable server; placed when one is).
    #[serde(default)]
    pub server: Option<crate::Id>,
    /// Unix seconds before which the holder must not run jobs (0: at once).
    #[serde(default)]
    pub not_before: i64,
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
