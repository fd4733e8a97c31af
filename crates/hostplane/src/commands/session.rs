//! `login`, `logout`, `whoami`, `status` and `events`.

use anyhow::{bail, Context};
use proto::v1::{EventParams, LoginRequest};
use std::io::{BufRead, IsTerminal, Write};

use super::Ctx;
use crate::cli::{EventsArgs, LoginArgs};
use crate::login::{self, SavedLogin};
use crate::output::{print_fields, table, Listing};

/// `hostplane login`: check the credentials against the controller and save them.
pub async fn login(ctx: &Ctx, args: LoginArgs) -> anyhow::Result<()> {
    let mut target = login::resolve(&ctx.global)?;
    if let Some(ca) = &target.ca {
        let abs =
            std::path::absolute(ca).with_context(|| format!("bad CA path {}", ca.display()))?;
        target.ca = Some(abs);
    }
    let (token, revoke_on_logout) = match (args.token, args.account) {
        (Some(token), _) => (token.trim().to_owned(), false),
        (None, Some(account)) => {
            let password = read_password(&account)?;
            let anon = target.client(false)?.with_token(None);
            let created = anon
                .login(&LoginRequest {
                    account,
                    password,
                    token_name: Some(token_label()),
                    expires_in_days: None,
                    totp_code: args.code.clone().filter(|c| is_totp_code(c)),
                    recovery_code: args.code.clone().filter(|c| !is_totp_code(c)),
                })
                .await?;
            (created.token, true)
        }
        (None, None) => match std::env::var("HOSTPLANE_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
            Some(t) => (t.trim().to_owned(), false),
            None => bail!("give --token TOKEN (e.g. the admin token from `controller init`) or --account NAME"),
        },
    };
    if token.is_empty() {
        bail!("the token is empty");
    }
    target.token = Some(token.clone());
    let me = target.client(true)?.whoami().await?;
    let saved = SavedLogin {
        server: target.server.clone(),
        token,
        ca: target.ca.clone(),
        revoke_on_logout,
        up_data_dir: None,
    };
    let path = login::save(&saved)?;
    ctx.out.value(
        &serde_json::json!({ "server": saved.server, "account": me.account, "kind": me.kind, "token_id": me.token_id, "config": path }),
        &[
            ("logged in as", format!("{} ({})", me.account, me.kind)),
            ("server", saved.server.clone()),
            ("saved to", path.display().to_string()),
        ],
    )
}

/// Six digits (spaces allowed): a TOTP code, not a recovery code.
fn is_totp_code(code: &str) -> bool {
    let d: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    d.len() == 6 && d.iter().all(u8::is_ascii_digit)
}

fn token_label() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cli".into());
    let label: String = format!("cli@{host}")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    label
}

/// The password of `account`: one line of stdin, typed at a prompt with echo off on
/// a terminal, or piped.
fn read_password(account: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        eprint!("password for {account}: ");
        std::io::stderr().flush().ok();
        let line = {
            let _quiet = EchoOff::on(&stdin);
            read_line(&stdin)?
        };
        eprintln!();
        line
    } else {
        read_line(&stdin)?
    };
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given: type it at the prompt or pipe it, e.g. `echo \"$PW\" | hostplane login --account {account}`");
    }
    Ok(password)
}

fn read_line(stdin: &std::io::Stdin) -> anyhow::Result<String> {
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line)
}

/// Terminal echo switched off while it lives (restored on drop, also on error).
struct EchoOff<'a> {
    tty: &'a std::io::Stdin,
    saved: Option<rustix::termios::Termios>,
}

impl<'a> EchoOff<'a> {
    fn on(tty: &'a std::io::Stdin) -> Self {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let saved = tcgetattr(tty).ok();
        if let Some(mut quiet) = saved.clone() {
            quiet.local_modes.remove(LocalModes::ECHO);
            let _ = tcsetattr(tty, OptionalActions::Now, &quiet);
        }
        Self { tty, saved }
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ =
                rustix::termios::tcsetattr(self.tty, rustix::termios::OptionalActions::Now, saved);
        }
    }
}

/// `hostplane logout`.
pub async fn logout(ctx: &Ctx) -> anyhow::Result<()> {
    let Some(saved) = login::load()? else {
        return ctx.out.value(
            &serde_json::json!({ "logged_out": false }),
            &[("logout", "was not logged in".into())],
        );
    };
    let mut revoked = false;
    if saved.revoke_on_logout {
        let target = login::Target {
            server: saved.server.clone(),
            token: Some(saved.token.clone()),
            ca: saved.ca.clone(),
        };
        // Best effort: the login is forgotten even if the controller cannot be reached.
        if let Ok(api) = target.client(true) {
            if let Ok(me) = api.whoami().await {
                revoked = api.delete_token(&me.token_id).await.is_ok();
            }
        }
    }
    login::remove()?;
    ctx.out.value(
        &serde_json::json!({ "logged_out": true, "server": saved.server, "token_revoked": revoked }),
        &[("logged out of", saved.server.clone()), ("token revoked", if revoked { "yes" } else { "no" }.into())],
    )
}

/// `hostplane whoami`.
pub async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let me = api.whoami().await?;
    ctx.out.value(
        &me,
        &[
            ("account", me.account.clone()),
            ("kind", me.kind.clone()),
            ("token", me.token_id.clone()),
            ("server", api.base_url().to_owned()),
        ],
    )
}

/// `hostplane status`.
pub async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let st = api.status().await?;
    if ctx.out.json {
        return crate::output::print_json(&st);
    }
    let counts = st
        .counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    print_fields(&[
        ("server", api.base_url().to_owned()),
        ("version", st.version.clone()),
        ("revision", st.revision.to_string()),
        ("store", st.store.clone()),
        ("uptime", format!("{}s", st.uptime_seconds)),
        (
            "objects",
            if counts.is_empty() {
                "-".into()
            } else {
                counts
            },
        ),
    ]);
    if let Some(t) = &st.login_throttle {
        print_fields(&[(
            "logins",
            format!(
                "{} wrong passwords, {} refused (429), {} delayed; recent failures: {} account/address pairs, {} addresses, {} accounts",
                t.failures, t.refused, t.delayed, t.sources, t.addresses, t.accounts
            ),
        )]);
    }
    if !st.servers.is_empty() {
        println!("{}", health_line(&st.servers));
    }
    if !st.clusters.is_empty() {
        println!("\nclusters:");
        let rows = st.clusters.iter().map(|c| {
            let members: Vec<&proto::v1::ServerView> =
                st.servers.iter().filter(|s| s.cluster == c.name).collect();
            vec![
                c.name.clone(),
                c.role.clone(),
                if c.default { "yes".into() } else { "no".into() },
                if c.servers.is_empty() {
                    "-".into()
                } else {
                    c.servers.join(", ")
                },
                health_counts(&members),
                engine_states(&members),
            ]
        });
        println!(
            "{}",
            table(
                &["name", "role", "default", "servers", "health", "engine"],
                rows
            )
        );
    }
    if !st.servers.is_empty() {
        println!("\nservers:");
        println!(
            "{}",
            table(
                <proto::v1::ServerView as crate::output::Render>::HEADERS,
                st.servers.iter().map(crate::output::Render::cells)
            )
        );
    }
    Ok(())
}

/// The distinct engine states reported by a cluster's servers, e.g. `ok` or
/// `not built` (the role's engine is not in this build yet); `-` before heartbeats.
fn engine_states(servers: &[&proto::v1::ServerView]) -> String {
    let mut states: Vec<String> = Vec::new();
    for s in servers {
        for e in &s.engines {
            let st = e.state.replace('_', " ");
            if !states.contains(&st) {
                states.push(st);
            }
        }
    }
    if states.is_empty() {
        "-".into()
    } else {
        states.join(", ")
    }
}

/// `health: 9 servers: 8 up, 1 down`.
fn health_line(servers: &[proto::v1::ServerView]) -> String {
    let all: Vec<&proto::v1::ServerView> = servers.iter().collect();
    format!(
        "{:<10} {} servers: {}",
        "health:",
        servers.len(),
        health_counts(&all)
    )
}

/// `2 up`, `1 up, 1 suspect`, `-` for none; drained servers counted apart.
fn health_counts(servers: &[&proto::v1::ServerView]) -> String {
    if servers.is_empty() {
        return "-".into();
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in servers {
        let key = if s.drained {
            format!("{} drained", s.health)
        } else {
            s.health.clone()
        };
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    let order = |k: &str| match k {
        "up" => 0,
        "suspect" => 1,
        "down" => 2,
        _ => 3,
    };
    counts.sort_by_key(|(k, _)| order(k));
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `hostplane events`.
pub async fn events(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let params = EventParams {
        cursor: args.list.cursor.clone(),
        limit: args.list.limit,
    };
    let listing = if args.list.fetch_all() {
        Listing::All(api.list_all_events(&params).await?)
    } else {
        Listing::Page(api.list_events(&params).await?)
    };
    ctx.out.list(&listing)
}
