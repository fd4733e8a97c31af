//! `hostplane up`: a whole platform on this machine. For now: the controller
//! (agents join in a later step). Creates the data dir on the first run, keeps the
//! admin token in `<data_dir>/admin.token` so later runs reuse it, saves the CLI
//! login so other shells need no flags, and stops cleanly on Ctrl-C.

use anyhow::{bail, Context};
use controller::config::ControllerConfig;
use controller::init::InitOptions;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::UpArgs;
use crate::login::{self, write_private, SavedLogin};
use crate::output::{print_json, Output};

/// Name of the admin token file inside the data dir.
pub const TOKEN_FILE: &str = "admin.token";
/// Name of the file recording what `up` created.
pub const STATE_FILE: &str = "up.toml";

/// What `up` created in its data dir (the paths `init` chose).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UpState {
    /// Controller config file.
    config: PathBuf,
    /// CA certificate.
    ca: PathBuf,
}

/// Run `hostplane up`.
pub async fn run(out: Output, args: UpArgs) -> anyhow::Result<()> {
    crate::init_tracing("warn");
    let data_dir = std::path::absolute(&args.data_dir)
        .with_context(|| format!("bad data dir {}", args.data_dir.display()))?;
    let (state, token, fresh) = prepare(&data_dir, &args).await?;
    let mut config = ControllerConfig::load(&state.config)
        .with_context(|| format!("cannot load {}", state.config.display()))?;
    config.listen = args.listen;
    let listener = crate::controller_cmd::bind(args.listen).await?;
    let url = config.url(listener.local_addr()?);
    write_private(
        &data_dir.join("controller.url"),
        format!("{url}\n").as_bytes(),
    )?;
    let saved = SavedLogin {
        server: url.clone(),
        token: token.clone(),
        ca: Some(state.ca.clone()),
        revoke_on_logout: false,
    };
    let login_path = login::save(&saved)?;

    if out.json {
        print_json(&serde_json::json!({
            "url": url, "admin_token": token, "ca": state.ca, "data_dir": data_dir,
            "cli_config": login_path, "created": fresh,
        }))?;
    } else {
        print_summary(&url, &token, &state.ca, &data_dir, &login_path, fresh)?;
    }
    controller::serve(config, listener, crate::shutdown_signal()).await?;
    println!(
        "hostplane up: stopped (data kept in {})",
        data_dir.display()
    );
    Ok(())
}

/// Create the data dir on the first run; on later runs read what the first made.
async fn prepare(data_dir: &Path, args: &UpArgs) -> anyhow::Result<(UpState, String, bool)> {
    let token_path = data_dir.join(TOKEN_FILE);
    let state_path = data_dir.join(STATE_FILE);
    if token_path.exists() && state_path.exists() {
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("cannot read {}", token_path.display()))?
            .trim()
            .to_owned();
        let text = std::fs::read_to_string(&state_path)
            .with_context(|| format!("cannot read {}", state_path.display()))?;
        let state: UpState = toml::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; move the data dir away to start afresh",
                state_path.display()
            )
        })?;
        return Ok((state, token, false));
    }
    let occupied = std::fs::read_dir(data_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if occupied {
        bail!(
            "{} exists but was not made by `hostplane up` (no {TOKEN_FILE}); choose another --data-dir or empty it",
            data_dir.display()
        );
    }
    let opts = InitOptions {
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        store_url: None,
        extra_names: Vec::new(),
        admin_name: "admin".into(),
        plain_http: false,
    };
    let created = controller::init::init(opts)
        .await
        .context("cannot create the controller data dir")?;
    let state = UpState {
        config: std::path::absolute(&created.config_path)?,
        ca: std::path::absolute(&created.ca_path)?,
    };
    write_private(&token_path, format!("{}\n", created.admin_token).as_bytes())?;
    write_private(&state_path, toml::to_string(&state)?.as_bytes())?;
    Ok((state, created.admin_token, true))
}

fn print_summary(
    url: &str,
    token: &str,
    ca: &Path,
    data_dir: &Path,
    login_path: &Path,
    fresh: bool,
) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "hostplane is up{}",
        if fresh { " (new data dir)" } else { "" }
    )?;
    writeln!(o)?;
    writeln!(o, "  API URL      {url}")?;
    writeln!(o, "  admin token  {token}")?;
    writeln!(
        o,
        "               (kept in {}, mode 0600)",
        data_dir.join(TOKEN_FILE).display()
    )?;
    writeln!(o, "  CA           {}", ca.display())?;
    writeln!(o, "  data dir     {}", data_dir.display())?;
    writeln!(
        o,
        "  CLI login    {} (other shells need no flags)",
        login_path.display()
    )?;
    writeln!(o)?;
    writeln!(o, "try, from another shell:")?;
    writeln!(o, "  hostplane status")?;
    writeln!(o, "  hostplane cluster add web --role web --default")?;
    writeln!(o, "  hostplane customer add demo")?;
    writeln!(o, "  hostplane domain add example.com --customer demo")?;
    writeln!(
        o,
        "  curl --cacert {} -H \"Authorization: Bearer $(cat {})\" {url}/v1/status",
        ca.display(),
        data_dir.join(TOKEN_FILE).display()
    )?;
    writeln!(o)?;
    writeln!(o, "press Ctrl-C to stop")?;
    o.flush()?;
    Ok(())
}
