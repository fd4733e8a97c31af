//! The `php.ini` values a site may set: the allow-list [`INI_KEYS`], each key's
//! type, range and normal form, and the plan's ceilings on the limits.
//!
//! Only these keys exist for a site: each is either a limit (sizes, times; set with
//! `php_admin_value`, so `ini_set` in a script cannot raise it) bounded by the
//! owner's plan ([`PhpCeilings`]), or a preference (`php_value`, a script may change
//! it). Values are tiny, typed and in a normal form, so nothing but a well-formed
//! value can reach a php-fpm pool file.

use std::collections::BTreeMap;

use crate::error::Invalid;

/// The plan's upper bounds of the PHP limits of its sites
/// ([`crate::limits::Limits::php_memory_mb`] and the other `php_*` limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhpCeilings {
    /// Largest `memory_limit` (MiB).
    pub memory_mb: u64,
    /// Largest `upload_max_filesize` and `post_max_size` (MiB).
    pub upload_mb: u64,
    /// Largest `max_execution_time` and `max_input_time` (seconds).
    pub execution_s: u64,
}

impl Default for PhpCeilings {
    /// The default plan's: 512 MiB memory, 256 MiB uploads, 300 s.
    fn default() -> Self {
        Self::from(&crate::limits::Limits::default())
    }
}

impl From<&crate::limits::Limits> for PhpCeilings {
    fn from(l: &crate::limits::Limits) -> Self {
        Self {
            memory_mb: l.php_memory_mb,
            upload_mb: l.php_upload_mb,
            execution_s: l.php_execution_s,
        }
    }
}

impl PhpCeilings {
    /// No plan bound (only each key's own range): the engine's check of stored values.
    pub fn unbounded() -> Self {
        Self {
            memory_mb: u64::MAX,
            upload_mb: u64::MAX,
            execution_s: u64::MAX,
        }
    }
}

/// Which plan ceiling bounds a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// Only the key's own range.
    None,
    /// [`PhpCeilings::memory_mb`].
    Memory,
    /// [`PhpCeilings::upload_mb`].
    Upload,
    /// [`PhpCeilings::execution_s`].
    Execution,
}

/// A key's type and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IniKind {
    /// A size in MiB, written `64M` (input also `64`, `64m`, `1G`).
    SizeMb {
        /// Smallest value.
        min: u64,
        /// Largest value (before the plan's ceiling).
        max: u64,
        /// The plan ceiling that also bounds it.
        ceiling: Ceiling,
    },
    /// Whole seconds (input also `120s`).
    Seconds {
        /// Smallest value.
        min: u64,
        /// Largest value (before the plan's ceiling).
        max: u64,
        /// The plan ceiling that also bounds it.
        ceiling: Ceiling,
    },
    /// A whole number.
    Int {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// `on` or `off` (input also `1`/`0`, `true`/`false`, `yes`/`no`).
    Flag,
    /// A time zone: `UTC` or `Area/Location` of the IANA database (`Europe/Berlin`).
    Timezone,
    /// A character set name (`UTF-8`, `ISO-8859-1`): letters, digits, `-`, `_`,
    /// `.`, `:`, at most 40.
    Charset,
    /// `off`, `on` (unlimited) or a buffer size in bytes (1 to 1048576).
    OutputBuffering,
}

/// One allowed `php.ini` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IniSpec {
    /// The `php.ini` name.
    pub key: &'static str,
    /// Type and range.
    pub kind: IniKind,
    /// Set with `php_admin_*`: scripts cannot change it (the limits).
    pub admin: bool,
    /// One line for `--help` and the docs.
    pub help: &'static str,
}

/// Every key a site may set (the documented list: `docs/web.md`).
pub const INI_KEYS: &[IniSpec] = &[
    IniSpec {
        key: "upload_max_filesize",
        kind: IniKind::SizeMb {
            min: 1,
            max: 4096,
            ceiling: Ceiling::Upload,
        },
        admin: true,
        help: "largest uploaded file, e.g. 64M (engine default 64M)",
    },
    IniSpec {
        key: "post_max_size",
        kind: IniKind::SizeMb {
            min: 1,
            max: 4096,
            ceiling: Ceiling::Upload,
        },
        admin: true,
        help: "largest request body, at least upload_max_filesize (default: as large as it)",
    },
    IniSpec {
        key: "memory_limit",
        kind: IniKind::SizeMb {
            min: 16,
            max: 16384,
            ceiling: Ceiling::Memory,
        },
        admin: true,
        help: "memory of one request, e.g. 256M (PHP's default 128M)",
    },
    IniSpec {
        key: "max_execution_time",
        kind: IniKind::Seconds {
            min: 1,
            max: 86400,
            ceiling: Ceiling::Execution,
        },
        admin: true,
        help: "seconds a script may run (PHP's default 30)",
    },
    IniSpec {
        key: "max_input_time",
        kind: IniKind::Seconds {
            min: 1,
            max: 86400,
            ceiling: Ceiling::Execution,
        },
        admin: true,
        help: "seconds to read the request body (PHP's default 60)",
    },
    IniSpec {
        key: "max_input_vars",
        kind: IniKind::Int {
            min: 100,
            max: 100_000,
        },
        admin: true,
        help: "most input variables per request, 100..100000 (PHP's default 1000)",
    },
    IniSpec {
        key: "display_errors",
        kind: IniKind::Flag,
        admin: false,
        help: "show PHP errors in pages: on/off (default off)",
    },
    IniSpec {
        key: "date.timezone",
        kind: IniKind::Timezone,
        admin: false,
        help: "default time zone, UTC or Area/Location, e.g. Europe/Berlin",
    },
    IniSpec {
        key: "session.gc_maxlifetime",
        kind: IniKind::Seconds {
            min: 60,
            max: 2_592_000,
            ceiling: Ceiling::None,
        },
        admin: false,
        help: "seconds an idle session is kept, 60..2592000 (PHP's default 1440)",
    },
    IniSpec {
        key: "default_charset",
        kind: IniKind::Charset,
        admin: false,
        help: "charset of text/html answers, e.g. UTF-8",
    },
    IniSpec {
        key: "short_open_tag",
        kind: IniKind::Flag,
        admin: false,
        help: "accept <? as <?php: on/off (default off)",
    },
    IniSpec {
        key: "output_buffering",
        kind: IniKind::OutputBuffering,
        admin: false,
        help: "off, on, or a buffer size in bytes 1..1048576 (Debian's default 4096)",
    },
];

/// Areas of the IANA time zone database (the first part of `Area/Location`).
const TZ_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// The spec of `key`, or an error listing the allowed keys.
pub(super) fn spec(key: &str) -> Result<&'static IniSpec, Invalid> {
    INI_KEYS.iter().find(|s| s.key == key).ok_or_else(|| {
        let all: Vec<&str> = INI_KEYS.iter().map(|s| s.key).collect();
        Invalid::new(
            "unknown_php_setting",
            format!(
                "`{key}` is not a PHP setting a site may change; allowed: {}",
                all.join(", ")
            ),
        )
    })
}

/// Cross-key rule: `post_max_size` is at least `upload_max_filesize` when both are
/// set (else every upload near the limit fails with an empty `$_FILES`).
pub(super) fn check_pair(ini: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let mb = |k: &str| {
        ini.get(k)
            .and_then(|v| v.strip_suffix('M')?.parse::<u64>().ok())
    };
    if let (Some(up), Some(post)) = (mb("upload_max_filesize"), mb("post_max_size")) {
        if post < up {
            return Err(Invalid::new(
                "post_below_upload",
                format!("post_max_size ({post}M) must be at least upload_max_filesize ({up}M)"),
            ));
        }
    }
    Ok(())
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl IniSpec {
    /// The normal form of `raw` for this key, checked against its range and the
    /// plan's `ceilings`.
    pub fn normalise(&self, raw: &str, ceilings: &PhpCeilings) -> Result<String, Invalid> {
        let key = self.key;
        let bad = |what: &str| {
            Invalid::new(
                "bad_php_value",
                format!("`{raw}` is not a valid {key}: {what} ({})", self.help),
            )
        };
        let bounded = |n: u64, min: u64, max: u64, ceiling: Ceiling, unit: &str| {
            let plan = match ceiling {
                Ceiling::None => u64::MAX,
                Ceiling::Memory => ceilings.memory_mb,
                Ceiling::Upload => ceilings.upload_mb,
                Ceiling::Execution => ceilings.execution_s,
            };
            if n < min || n > max {
                return Err(Invalid::new(
                    "out_of_range",
                    format!("{key} is {min}{unit} to {max}{unit}; `{raw}` is not"),
                ));
            }
            if n > plan {
                return Err(Invalid::new(
                    "over_plan",
                    format!("{key} is at most {plan}{unit} on this account's plan"),
                ));
            }
            Ok(n)
        };
        match self.kind {
            IniKind::SizeMb { min, max, ceiling } => {
                let t = raw.trim();
                let (digits, factor) = match t.as_bytes().last() {
                    Some(b'M' | b'm') => (&t[..t.len() - 1], 1),
                    Some(b'G' | b'g') => (&t[..t.len() - 1], 1024),
                    _ => (t, 1),
                };
                let n = number(digits)
                    .and_then(|n| n.checked_mul(factor))
                    .ok_or_else(|| bad("a size in MiB like 64M or 1G"))?;
                Ok(format!("{}M", bounded(n, min, max, ceiling, "M")?))
            }
            IniKind::Seconds { min, max, ceiling } => {
                let t = raw.trim();
                let n =
                    number(t.strip_suffix('s').unwrap_or(t)).ok_or_else(|| bad("whole seconds"))?;
                Ok(bounded(n, min, max, ceiling, "s")?.to_string())
            }
            IniKind::Int { min, max } => {
                let n = number(raw.trim()).ok_or_else(|| bad("a whole number"))?;
                Ok(bounded(n, min, max, Ceiling::None, "")?.to_string())
            }
            IniKind::Flag => match raw.trim().to_ascii_lowercase().as_str() {
                "on" | "1" | "true" | "yes" => Ok("on".into()),
                "off" | "0" | "false" | "no" => Ok("off".into()),
                _ => Err(bad("on or off")),
            },
            IniKind::Timezone => {
                timezone(raw).ok_or_else(|| bad("UTC or Area/Location, e.g. Europe/Berlin"))
            }
            IniKind::Charset => {
                let ok = !raw.is_empty()
                    && raw.len() <= 40
                    && raw.as_bytes()[0].is_ascii_alphanumeric()
                    && raw.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
                    });
                ok.then(|| raw.to_owned())
                    .ok_or_else(|| bad("a charset name like UTF-8"))
            }
            IniKind::OutputBuffering => match raw.trim().to_ascii_lowercase().as_str() {
                "off" | "0" => Ok("off".into()),
                "on" => Ok("on".into()),
                t => {
                    let n = number(t).ok_or_else(|| bad("off, on or a size in bytes"))?;
                    Ok(bounded(n, 1, 1 << 20, Ceiling::None, " bytes")?.to_string())
                }
            },
        }
    }
}

/// `UTC`, or `Area/Location[/Sub]` with a known area and parts of letters, digits,
/// `_`, `-`, `+` (each 1 to 30 characters, starting with a letter).
fn timezone(raw: &str) -> Option<String> {
    if raw == "UTC" {
        return Some(raw.into());
    }
    let mut parts = raw.split('/');
    let area = parts.next()?;
    if !TZ_AREAS.contains(&area) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let part_ok = |p: &&str| {
        (1..=30).contains(&p.len())
            && p.as_bytes()[0].is_ascii_alphabetic()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    };
    (!rest.is_empty() && rest.len() <= 2 && rest.iter().all(part_ok)).then(|| raw.to_owned())
}
