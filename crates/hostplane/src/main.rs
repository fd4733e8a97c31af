//! `hostplane`: one binary for the controller, `up` (a whole platform on one
//! machine) and the CLI client of the REST API.

#![forbid(unsafe_code)]

mod agent_cmd;
mod cli;
mod commands;
mod controller_cmd;
mod engines;
mod login;
mod output;
mod up;

use std::process::ExitCode;

/// mimalloc returns freed memory to the OS; with glibc's allocator the controller
/// kept ~900 MiB after a burst of argon2 hashing (19 MiB per hash) and never shrank.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `hostplane sendmail` takes sendmail's syntax (`-t -i -fSENDER`), which is
    // not clap's, and runs as a site's PHP user: no runtime, no login file.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sendmail")
        && !matches!(args.get(2).map(String::as_str), Some("--help" | "-h"))
    {
        let code = role_web::mailer::client::main(
            &args[2..],
            &mut std::io::stdin().lock(),
            &mut std::io::stderr(),
        );
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    quiet_broken_pipe();
    let cli = cli::parse();
    let password_login = matches!(&cli.command, cli::Command::Login(l) if l.account.is_some());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, password_login);
            ExitCode::FAILURE
        }
    }
}

/// `hostplane domain list | head` closes the pipe early: Rust ignores SIGPIPE, so
/// the next `println!` panics. Like other command-line tools, end quietly then
/// (exit status 141, a shell's for SIGPIPE) instead of printing a panic; every
/// other panic keeps the default report.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn dispatch(cli: cli::Cli) -> anyhow::Result<()> {
    let out = output::Output {
        json: cli.global.json,
    };
    match cli.command {
        cli::Command::Controller(cmd) => controller_cmd::run(out, cmd).await,
        cli::Command::Up(args) => up::run(out, args).await,
        cli::Command::Agent(args) => agent_cmd::run(args).await,
        command => {
            commands::run(
                &commands::Ctx {
                    global: cli.global,
                    out,
                },
                command,
            )
            .await
        }
    }
}

/// Print `error: ...` and, where we can tell, what to do about it (`password_login`:
/// the command was `login --account`, so a 401 is about the password, not a token).
fn report(err: &anyhow::Error, password_login: bool) {
    // What the command printed comes first, whole, so `error:` starts its own line.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let api_err = err
        .chain()
        .find_map(|e| e.downcast_ref::<client::ClientError>());
    match api_err {
        Some(e) => {
            eprintln!("error: {e}");
            if e.is_unauthorized() && password_login {
                eprintln!("hint: check the account name and password (an administrator can set a new one: `hostplane customer update NAME --password ...`)");
            } else if e.is_unauthorized() {
                eprintln!("hint: the token was not accepted: run `hostplane login` again or set HOSTPLANE_TOKEN");
            } else if e.is_certificate_problem() {
                eprintln!(
                    "hint: the controller's certificate is not trusted: pass --ca FILE (the CA from \
                     `hostplane controller init`) or set HOSTPLANE_CA"
                );
            } else if e.is_transport() {
                eprintln!("hint: is the controller running? (`hostplane up` or `hostplane controller run`); check --server / HOSTPLANE_URL");
            }
        }
        None => eprintln!("error: {err:#}"),
    }
}

/// Log to stderr; `RUST_LOG` overrides `default`.
pub(crate) fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .ok();
}

/// Environment variable `up` sets on its children: stop when `up` is gone.
pub(crate) const EXIT_WITH_PARENT_ENV: &str = "HOSTPLANE_EXIT_WITH_PARENT";

/// Completes on Ctrl-C or SIGTERM, or, when `$HOSTPLANE_EXIT_WITH_PARENT` is set
/// (children of `hostplane up`), when the parent process is gone (so a killed `up`
/// leaves no agents behind).
pub(crate) async fn stop_signal() {
    if std::env::var_os(EXIT_WITH_PARENT_ENV).is_none() {
        return shutdown_signal().await;
    }
    let parent = std::os::unix::process::parent_id();
    let orphaned = async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tick.tick().await;
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!("the parent process {parent} is gone; stopping");
                return;
            }
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = orphaned => {}
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
