//! `hostplane agent --config agent.toml`: run one server's agent until Ctrl-C or
//! SIGTERM.

use anyhow::Context;

use crate::cli::AgentArgs;

/// Run `hostplane agent`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::init_tracing("info");
    let config = agent::AgentConfig::load(&args.config)
        .with_context(|| format!("cannot load the agent config {}", args.config.display()))?;
    let name = config.name.clone();
    tracing::info!(server = %name, config = %args.config.display(), "hostplane agent starting");
    agent::run_with_engines(config, crate::engines::registry(), crate::stop_signal())
        .await
        .with_context(|| format!("agent {name} stopped with an error"))?;
    tracing::info!(server = %name, "hostplane agent stopped");
    Ok(())
}
