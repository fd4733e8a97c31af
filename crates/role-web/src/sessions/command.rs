//! The commands (pure): a parsed request of one site in, the answer and the write to
//! replicate out. What PHP's `redis` session handler (php-redis 5.3, checked against
//! a real Redis with `MONITOR`) sends:
//!
//! | PHP does | commands |
//! | --- | --- |
//! | connect | `AUTH` (only with `auth=` in the save path), `SELECT` (only with `database=`) |
//! | `session_start` | `EXISTS` (with `session.use_strict_mode`), `GET` |
//! | write / write unchanged (`session.lazy_write`) | `SETEX key ttl data` / `EXPIRE key ttl` |
//! | `session_destroy`, `session_regenerate_id(true)` | `DEL` |
//! | `redis.session.locking_enabled=1` | `SET key_LOCK token NX [PX ms]`, release by `EVALSHA` of a fixed script, else `EVAL` of it |
//!
//! `PING`, `ECHO`, `QUIT`, `TTL`/`PTTL`, `SET` with `EX`/`PX`/`NX`/`XX` and `PSETEX`,
//! `PEXPIRE` are answered as Redis does; `EVAL`/`EVALSHA` run only the lock release
//! script (compare and delete); every other command is `-ERR unknown command`.
//! `AUTH` is accepted with any password: the caller is identified by its uid, and
//! the password would be visible to the site anyway. `SELECT` accepts database 0 only.

use std::time::{Duration, Instant};

use super::resp::{encode_command, Reply};
use super::store::Store;

/// The SHA-1 of [`UNLOCK_SCRIPT`], which php-redis tries with `EVALSHA` first.
pub const UNLOCK_SHA: &str = "b70c2384248f88e6b75b9f89241a180f856ad852";
/// php-redis's lock release script: delete the lock if it still holds our token.
pub const UNLOCK_SCRIPT: &str =
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";

/// A change to replicate to the other servers of the cluster (applied here already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set a key for a time.
    Set {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// Its time to live (already clamped).
        ttl: Duration,
    },
    /// Delete keys.
    Del(Vec<Vec<u8>>),
    /// Give a key a new time to live.
    Expire {
        /// The key.
        key: Vec<u8>,
        /// The new time to live.
        ttl: Duration,
    },
}

impl Write {
    /// The wire form between servers: one command for `site`
    /// (`PSETEX site key ms value`, `DEL site key…`, `PEXPIRE site key ms`).
    pub fn encode(&self, site: &str, out: &mut Vec<u8>) {
        let s = site.as_bytes();
        match self {
            Write::Set { key, value, ttl } => {
                let ms = ttl.as_millis().max(1).to_string();
                encode_command(&[b"PSETEX", s, key, ms.as_bytes(), value], out);
            }
            Write::Del(keys) => {
                let mut args: Vec<&[u8]> = vec![b"DEL", s];
                args.extend(keys.iter().map(Vec::as_slice));
                encode_command(&args, out);
            }
            Write::Expire { key, ttl } => {
                let ms = ttl.as_millis().max(1).to_string();
                encode_command(&[b"PEXPIRE", s, key, ms.as_bytes()], out);
            }
        }
    }

    /// Read one command of [`Write::encode`]: the site and the write.
    pub fn decode(args: &[Vec<u8>]) -> Option<(String, Write)> {
        let (name, rest) = args.split_first()?;
        let (site, rest) = rest.split_first()?;
        let site = String::from_utf8(site.clone()).ok()?;
        let w = match (name.as_slice(), rest) {
            (b"PSETEX", [key, ms, value]) => Write::Set {
                key: key.clone(),
                value: value.clone(),
                ttl: Duration::from_millis(number(ms)?),
            },
            (b"DEL", keys) if !keys.is_empty() => Write::Del(keys.to_vec()),
            (b"PEXPIRE", [key, ms]) => Write::Expire {
                key: key.clone(),
                ttl: Duration::from_millis(number(ms)?),
            },
            _ => return None,
        };
        Some((site, w))
    }

    /// Apply a write that came from another server.
    pub fn apply(&self, store: &mut Store, site: &str, now: Instant) {
        match self {
            Write::Set { key, value, ttl } => {
                if let Err(e) = store.set(site, key, value.clone(), Some(*ttl), now) {
                    tracing::warn!(site, error = %e, "a replicated session did not fit");
                }
            }
            Write::Del(keys) => {
                for k in keys {
                    store.del(site, k, now);
                }
            }
            Write::Expire { key, ttl } => {
                store.expire(site, key, *ttl, now);
            }
        }
    }
}

fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// What a command does: the answer, the write to replicate (if it changed
/// anything), and whether the connection ends after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The answer.
    pub reply: Reply,
    /// The write to replicate before answering.
    pub write: Option<Write>,
    /// `QUIT`.
    pub close: bool,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome {
            reply,
            write: None,
            close: false,
        }
    }
}

fn wrote(reply: Reply, write: Write) -> Outcome {
    Outcome {
        reply,
        write: Some(write),
        close: false,
    }
}

fn arity(name: &str) -> Outcome {
    Reply::err(format!("wrong number of arguments for '{name}' command")).into()
}

fn not_int() -> Outcome {
    Reply::err("value is not an integer or out of range").into()
}

fn seconds(b: &[u8]) -> Option<Duration> {
    number(b).filter(|&n| n > 0).map(Duration::from_secs)
}

fn millis(b: &[u8]) -> Option<Duration> {
    number(b).filter(|&n| n > 0).map(Duration::from_millis)
}

/// Run one command of `site` (the caller's namespace, chosen by the server).
pub fn execute(store: &mut Store, site: &str, args: &[Vec<u8>], now: Instant) -> Outcome {
    let Some((name, rest)) = args.split_first() else {
        return Reply::err("empty command").into();
    };
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    match (upper.as_str(), rest) {
        ("PING", []) => Reply::Simple("PONG").into(),
        ("PING" | "ECHO", [msg]) => Reply::Bulk(Some(msg.clone())).into(),
        ("QUIT", _) => Outcome {
            reply: Reply::OK,
            write: None,
            close: true,
        },
        ("AUTH", [_] | [_, _]) => Reply::OK.into(),
        ("SELECT", [db]) => match number(db) {
            Some(0) => Reply::OK.into(),
            Some(_) => Reply::err("DB index is out of range (only database 0)").into(),
            None => not_int(),
        },
        ("GET", [key]) => Reply::Bulk(store.get(site, key, now).map(<[u8]>::to_vec)).into(),
        ("EXISTS", keys) if !keys.is_empty() => Reply::Int(
            keys.iter()
                .filter(|k| store.get(site, k, now).is_some())
                .count() as i64,
        )
        .into(),
        ("TTL" | "PTTL", [key]) => Reply::Int(match store.ttl(site, key, now) {
            None => -2,
            Some(t) if upper == "TTL" => t.as_secs_f64().round() as i64,
            Some(t) => t.as_millis() as i64,
        })
        .into(),
        ("SETEX" | "PSETEX", [key, t, value]) => {
            let ttl = if upper == "SETEX" {
                seconds(t)
            } else {
                millis(t)
            };
            match ttl {
                Some(ttl) => set(store, site, key, value, Some(ttl), now),
                None => Reply::err(format!(
                    "invalid expire time in '{}' command",
                    upper.to_lowercase()
                ))
                .into(),
            }
        }
        ("SET", [key, value, opts @ ..]) => set_with_options(store, site, key, value, opts, now),
        ("DEL", keys) if !keys.is_empty() => {
            let n = keys.iter().filter(|k| store.del(site, k, now)).count();
            wrote(Reply::Int(n as i64), Write::Del(keys.to_vec()))
        }
        ("EXPIRE" | "PEXPIRE", [key, t]) => {
            let ttl = if upper == "EXPIRE" {
                seconds(t)
            } else {
                millis(t)
            };
            let Some(ttl) = ttl else {
                // Redis deletes a key given a time in the past; PHP never asks that.
                return not_int();
            };
            let ttl = store.clamp(Some(ttl));
            match store.expire(site, key, ttl, now) {
                true => wrote(
                    Reply::Int(1),
                    Write::Expire {
                        key: key.clone(),
                        ttl,
                    },
                ),
                false => Reply::Int(0).into(),
            }
        }
        ("EVALSHA", [sha, n, key, token]) if n.as_slice() == b"1" => {
            if sha.eq_ignore_ascii_case(UNLOCK_SHA.as_bytes()) {
                unlock(store, site, key, token, now)
            } else {
                Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()).into()
            }
        }
        ("EVAL", [script, n, key, token])
            if n.as_slice() == b"1" && script.as_slice() == UNLOCK_SCRIPT.as_bytes() =>
        {
            unlock(store, site, key, token, now)
        }
        ("EVAL" | "EVALSHA", _) => {
            Reply::err("only the session lock release script runs here").into()
        }
        (
            "PING" | "ECHO" | "AUTH" | "SELECT" | "GET" | "EXISTS" | "TTL" | "PTTL" | "SETEX"
            | "PSETEX" | "SET" | "DEL" | "EXPIRE" | "PEXPIRE",
            _,
        ) => arity(&upper.to_lowercase()),
        _ => {
            let shown: String = upper.chars().take(32).collect();
            Reply::err(format!("unknown command '{shown}'")).into()
        }
    }
}

fn set(
    store: &mut Store,
    site: &str,
    key: &[u8],
    value: &[u8],
    ttl: Option<Duration>,
    now: Instant,
) -> Outcome {
    let ttl = store.clamp(ttl);
    match store.set(site, key, value.to_vec(), Some(ttl), now) {
        Ok(()) => wrote(
            Reply::OK,
            Write::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                ttl,
            },
        ),
        Err(e) => Reply::Error(e.to_string()).into(),
    }
}

/// `SET key value [EX s | PX ms] [NX | XX]`.
fn set_with_options(
    store: &mut Store,
    site: &str,
    key: &[u8],
    value: &[u8],
    opts: &[Vec<u8>],
    now: Instant,
) -> Outcome {
    let (mut ttl, mut nx, mut xx) = (None, false, false);
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match o.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"EX" | b"PX" if ttl.is_none() => {
                let Some(t) = it.next() else {
                    return Reply::err("syntax error").into();
                };
                let parsed = if o.eq_ignore_ascii_case(b"EX") {
                    seconds(t)
                } else {
                    millis(t)
                };
                match parsed {
                    Some(d) => ttl = Some(d),
                    None => return Reply::err("invalid expire time in 'set' command").into(),
                }
            }
            _ => return Reply::err("syntax error").into(),
        }
    }
    if nx && xx {
        return Reply::err("syntax error").into();
    }
    let exists = store.get(site, key, now).is_some();
    if (nx && exists) || (xx && !exists) {
        return Reply::Bulk(None).into();
    }
    set(store, site, key, value, ttl, now)
}

fn unlock(store: &mut Store, site: &str, key: &[u8], token: &[u8], now: Instant) -> Outcome {
    if store.get(site, key, now) == Some(token) {
        store.del(site, key, now);
        wrote(Reply::Int(1), Write::Del(vec![key.to_vec()]))
    } else {
        Reply::Int(0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::store::Limits;

    fn run(s: &mut Store, site: &str, cmd: &str, now: Instant) -> Outcome {
        let args: Vec<Vec<u8>> = cmd.split(' ').map(|a| a.as_bytes().to_vec()).collect();
        execute(s, site, &args, now)
    }

    fn reply(s: &mut Store, site: &str, cmd: &str, now: Instant) -> Reply {
        run(s, site, cmd, now).reply
    }

    #[test]
    fn what_php_redis_sends() {
        let (mut s, t) = (Store::default(), Instant::now());
        let k = "PHPREDIS_SESSION:abc";
        assert_eq!(reply(&mut s, "a", "AUTH secret", t), Reply::OK);
        assert_eq!(reply(&mut s, "a", "SELECT 0", t), Reply::OK);
        assert!(matches!(reply(&mut s, "a", "SELECT 1", t), Reply::Error(_)));
        assert_eq!(reply(&mut s, "a", &format!("EXISTS {k}"), t), Reply::Int(0));
        assert_eq!(
            reply(&mut s, "a", &format!("GET {k}"), t),
            Reply::Bulk(None)
        );
        let o = run(&mut s, "a", &format!("SETEX {k} 1440 u|s:1:\"x\";"), t);
        assert_eq!(o.reply, Reply::OK);
        assert!(
            matches!(o.write, Some(Write::Set { ttl, .. }) if ttl == Duration::from_secs(1440))
        );
        assert_eq!(
            reply(&mut s, "a", &format!("GET {k}"), t),
            Reply::Bulk(Some(b"u|s:1:\"x\";".to_vec()))
        );
        assert_eq!(
            reply(&mut s, "b", &format!("GET {k}"), t),
            Reply::Bulk(None),
            "another site"
        );
        let o = run(&mut s, "a", &format!("EXPIRE {k} 100"), t);
        assert_eq!(o.reply, Reply::Int(1));
        assert_eq!(reply(&mut s, "a", &format!("TTL {k}"), t), Reply::Int(100));
        assert_eq!(run(&mut s, "a", "EXPIRE nothing 100", t).write, None);
        let o = run(&mut s, "a", &format!("DEL {k}"), t);
        assert_eq!(o.reply, Reply::Int(1));
        assert_eq!(o.write, Some(Write::Del(vec![k.as_bytes().to_vec()])));
        assert_eq!(reply(&mut s, "a", &format!("TTL {k}"), t), Reply::Int(-2));
    }

    #[test]
    fn the_session_lock() {
        let (mut s, t) = (Store::default(), Instant::now());
        assert_eq!(
            reply(&mut s, "a", "SET k_LOCK me NX PX 30000", t),
            Reply::OK
        );
        assert_eq!(
            reply(&mut s, "a", "SET k_LOCK you NX", t),
            Reply::Bulk(None)
        );
        assert_eq!(
            reply(
                &mut s,
                "a",
                &format!("EVALSHA {UNLOCK_SHA} 1 k_LOCK you"),
                t
            ),
            Reply::Int(0)
        );
        let args: Vec<Vec<u8>> = ["EVAL", UNLOCK_SCRIPT, "1", "k_LOCK", "me"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        let o = execute(&mut s, "a", &args, t);
        assert_eq!(o.reply, Reply::Int(1));
        assert_eq!(o.write, Some(Write::Del(vec![b"k_LOCK".to_vec()])));
        assert!(
            matches!(reply(&mut s, "a", "EVALSHA 0000 1 k x", t), Reply::Error(e) if e.starts_with("NOSCRIPT"))
        );
        assert!(matches!(
            reply(&mut s, "a", "EVAL return 1 0", t),
            Reply::Error(_)
        ));
        assert_eq!(reply(&mut s, "a", "SET k v XX", t), Reply::Bulk(None));
        assert_eq!(reply(&mut s, "a", "SET k v EX 5 XX", t), Reply::Bulk(None));
        assert!(matches!(
            reply(&mut s, "a", "SET k v NX XX", t),
            Reply::Error(_)
        ));
        assert!(matches!(
            reply(&mut s, "a", "SET k v EX", t),
            Reply::Error(_)
        ));
        assert!(matches!(
            reply(&mut s, "a", "SET k v EX 0", t),
            Reply::Error(_)
        ));
    }

    #[test]
    fn errors_and_others() {
        let (mut s, t) = (
            Store::new(Limits {
                site_bytes: 200,
                max_ttl: Duration::from_secs(60),
            }),
            Instant::now(),
        );
        assert_eq!(reply(&mut s, "a", "PING", t), Reply::Simple("PONG"));
        assert_eq!(
            reply(&mut s, "a", "ping hi", t),
            Reply::Bulk(Some(b"hi".to_vec()))
        );
        assert_eq!(
            reply(&mut s, "a", "FLUSHALL", t),
            Reply::err("unknown command 'FLUSHALL'")
        );
        assert_eq!(
            reply(&mut s, "a", "KEYS *", t),
            Reply::err("unknown command 'KEYS'")
        );
        assert_eq!(
            reply(&mut s, "a", "GET", t),
            Reply::err("wrong number of arguments for 'get' command")
        );
        assert!(matches!(
            reply(&mut s, "a", "SETEX k -1 v", t),
            Reply::Error(_)
        ));
        assert!(
            matches!(reply(&mut s, "a", &format!("SET k {}", "x".repeat(300)), t), Reply::Error(e) if e.starts_with("OOM"))
        );
        assert_eq!(reply(&mut s, "a", "SETEX k 999999 v", t), Reply::OK);
        assert_eq!(
            reply(&mut s, "a", "TTL k", t),
            Reply::Int(60),
            "clamped to the longest"
        );
        assert!(run(&mut s, "a", "QUIT", t).close);
    }

    #[test]
    fn writes_travel_and_apply() {
        let t = Instant::now();
        let writes = [
            Write::Set {
                key: b"k\r\n".to_vec(),
                value: b"v\0".to_vec(),
                ttl: Duration::from_millis(1500),
            },
            Write::Expire {
                key: b"k\r\n".to_vec(),
                ttl: Duration::from_secs(9),
            },
            Write::Del(vec![b"x".to_vec(), b"y".to_vec()]),
        ];
        let mut wire = Vec::new();
        for w in &writes {
            w.encode("a.example", &mut wire);
        }
        let mut s = Store::default();
        let mut rest = &wire[..];
        let mut got = Vec::new();
        while let Some((args, used)) = crate::sessions::resp::parse(rest).unwrap() {
            let (site, w) = Write::decode(&args).unwrap();
            assert_eq!(site, "a.example");
            w.apply(&mut s, &site, t);
            got.push(w);
            rest = &rest[used..];
        }
        assert_eq!(got, writes);
        assert_eq!(
            s.ttl("a.example", b"k\r\n", t),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            Write::decode(&[b"GET".to_vec(), b"a".to_vec(), b"k".to_vec()]),
            None
        );
        assert_eq!(
            Write::decode(&[
                b"PSETEX".to_vec(),
                b"a".to_vec(),
                b"k".to_vec(),
                b"x".to_vec(),
                b"v".to_vec()
            ]),
            None
        );
    }
}
