//! `hostplane controller init` and `hostplane controller run`.

use anyhow::Context;
use controller::config::ControllerConfig;
use controller::init::{InitOptions, InitOutput};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use crate::cli::{ControllerCmd, InitArgs, RunArgs};
use crate::output::{print_fields, print_json, secret, Output};

/// Run `hostplane controller ...`.
pub async fn run(out: Output, cmd: ControllerCmd) -> anyhow::Result<()> {
    match cmd {
        ControllerCmd::Init(args) => init(out, args).await,
        ControllerCmd::Run(args) => serve(args).await,
    }
}

async fn init(out: Output, args: InitArgs) -> anyhow::Result<()> {
    let opts = InitOptions {
        data_dir: args.data_dir,
        listen: args.listen,
        store_url: args.store,
        extra_names: args.names,
        admin_name: args.admin.clone(),
        plain_http: args.plain_http,
    };
    let created = controller::init::init(opts)
        .await
        .context("controller init failed")?;
    if out.json {
        return print_json(&serde_json::json!({
            "config": created.config_path,
            "ca": created.ca_path,
            "url": created.url,
            "admin": args.admin,
            "admin_token": created.admin_token,
        }));
    }
    print_init(&created, &args.admin);
    Ok(())
}

fn print_init(created: &InitOutput, admin: &str) {
    println!("controller data dir ready");
    print_fields(&[
        ("config", created.config_path.display().to_string()),
        ("CA certificate", created.ca_path.display().to_string()),
        ("API URL", created.url.clone()),
        ("admin account", admin.to_owned()),
    ]);
    secret("admin token", &created.admin_token);
    println!();
    println!("next steps:");
    println!(
        "  hostplane controller run --config {}",
        created.config_path.display()
    );
    let url = if created.url.ends_with(":0") {
        "<the URL `controller run` prints>".to_owned()
    } else {
        created.url.clone()
    };
    println!(
        "  hostplane login --server {url} --ca {} --token <the admin token>",
        created.ca_path.display()
    );
    println!("  hostplane status");
}

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    crate::init_tracing("info");
    let mut config = ControllerConfig::load(&args.config).with_context(|| {
        format!(
            "cannot load the controller config {}",
            args.config.display()
        )
    })?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let listener = bind(config.listen).await?;
    let bound = listener.local_addr()?;
    let url = config.url(bound);
    announce(&url, &config.data_dir)?;
    controller::serve(config, listener, crate::stop_signal()).await?;
    eprintln!("hostplane controller stopped");
    Ok(())
}

/// Print the listening line (flushed: tests and scripts wait for it) and write
/// `<data_dir>/controller.url`.
fn announce(url: &str, data_dir: &Path) -> anyhow::Result<()> {
    // The file first: whoever sees the line may read the file at once.
    let file = data_dir.join("controller.url");
    crate::login::write_private(&file, format!("{url}\n").as_bytes())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "hostplane controller listening on {url}")?;
    stdout.flush()?;
    Ok(())
}

/// Bind the API listener; a busy address gets advice instead of an OS error code.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let mut next = addr;
            next.set_port(addr.port().wrapping_add(1).max(1));
            anyhow::bail!(
                "{addr} is already in use (is another hostplane controller or `hostplane up` running?); \
                 choose another address with --listen, e.g. --listen {next}"
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("not allowed to listen on {addr} (ports below 1024 need root); choose another with --listen")
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}
