//! `cluster` and `server`: the operator's infrastructure.

use proto::v1::{
    CreateCluster, CreateJoinToken, CreateServer, JoinTokenCreated, ListParams, RotateTsig,
    TsigView, UpdateCluster, UpdateServer,
};

use super::{listing, non_empty, Ctx};
use crate::cli::{ClusterCmd, JoinTokenCmd, JoinTokenCreate, ServerCmd, TsigCmd};
use crate::output::{print_fields, print_json};

/// `hostplane cluster ...`.
pub async fn cluster(ctx: &Ctx, cmd: ClusterCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        ClusterCmd::Add(a) => {
            let req = CreateCluster {
                name: a.name,
                role: a.role.to_string(),
                description: a.description,
                default: a.default.then_some(true),
                web_ttl: a.web_ttl,
                ttl: a.ttl,
                external_secondaries: (!a.external_secondaries.is_empty())
                    .then_some(a.external_secondaries),
                hostname: a.hostname,
            };
            ctx.out.one(&api.create_cluster(&req).await?)
        }
        ClusterCmd::List(l) => ctx.out.list(&listing!(
            api,
            l.list,
            l.list.params(),
            list_all_clusters,
            list_clusters
        )),
        ClusterCmd::Show(n) => ctx.out.one(&api.get_cluster(&n.name).await?),
        ClusterCmd::Update(u) => {
            let req = UpdateCluster {
                description: u.description,
                default: u.default,
                web_ttl: u.web_ttl,
                ttl: u.ttl,
                external_secondaries: if u.no_external_secondaries {
                    Some(Vec::new())
                } else {
                    (!u.external_secondaries.is_empty()).then_some(u.external_secondaries)
                },
                hostname: if u.no_hostname {
                    Some(String::new())
                } else {
                    u.hostname
                },
            };
            ctx.out.one(&api.update_cluster(&u.name, &req).await?)
        }
        ClusterCmd::Delete(n) => {
            api.delete_cluster(&n.name).await?;
            ctx.out.deleted("cluster", &n.name)
        }
        ClusterCmd::Tsig(TsigCmd::Show(n)) => tsig(ctx, &api.get_tsig(&n.name).await?),
        ClusterCmd::Tsig(TsigCmd::Rotate(r)) => {
            let req = RotateTsig {
                grace_seconds: r.grace,
            };
            tsig(ctx, &api.rotate_tsig(&r.name, &req).await?)
        }
    }
}

/// A DNS cluster's TSIG key and the secondaries' configuration.
fn tsig(ctx: &Ctx, view: &TsigView) -> anyhow::Result<()> {
    if ctx.out.json {
        return print_json(view);
    }
    let mut fields = vec![
        ("cluster", view.cluster.clone()),
        ("key name", view.name.clone()),
        ("algorithm", view.algorithm.clone()),
        ("secret", view.secret.clone()),
    ];
    if let Some(until) = &view.previous_valid_until {
        fields.push(("previous key valid until", until.clone()));
    }
    fields.push((
        "catalog zone",
        format!("{} (RFC 9432, version 2)", view.catalog_zone),
    ));
    fields.push(("transfer from", view.primaries.join(", ")));
    let allowed = if view.external_secondaries.is_empty() {
        "(none yet)".to_owned()
    } else {
        view.external_secondaries.join(", ")
    };
    fields.push(("allowed secondaries", allowed));
    print_fields(&fields);
    println!();
    println!(
        "A secondary must be allowed by address: hostplane cluster update {} --external-secondary IP[:PORT]",
        view.cluster
    );
    println!();
    println!("# ---- BIND 9.18+: inside options {{ }} (or your view) ----");
    print!("{}", view.bind_options);
    println!("# ---- BIND 9.18+: top level of named.conf ----");
    print!("{}", view.bind_config);
    println!();
    println!("# ---- Knot DNS 3.1+: knot.conf (or an included file) ----");
    print!("{}", view.knot_config);
    Ok(())
}

/// `hostplane server ...`.
pub async fn server(ctx: &Ctx, cmd: ServerCmd) -> anyhow::Result<()> {
    // stop/start talk to a local `hostplane up`, not to the API.
    let cmd = match cmd {
        ServerCmd::Stop(a) => return crate::up::control::client_command(ctx.out, "stop", a).await,
        ServerCmd::Start(a) => {
            return crate::up::control::client_command(ctx.out, "start", a).await
        }
        other => other,
    };
    let api = ctx.api()?;
    match cmd {
        ServerCmd::Add(a) => {
            let req = CreateServer {
                name: a.name,
                cluster: a.cluster,
                rank: a.rank,
                hostname: a.hostname,
                addresses: a.addresses,
                region: a.region,
                country: a.country,
                hardware: a.hardware,
                force: a.force.then_some(true),
            };
            ctx.out.one(&api.create_server(&req).await?)
        }
        ServerCmd::List(l) => {
            let params = ListParams {
                cluster: l.cluster,
                ..l.list.params()
            };
            ctx.out.list(&listing!(
                api,
                l.list,
                params,
                list_all_servers,
                list_servers
            ))
        }
        ServerCmd::Show(n) => ctx.out.one(&api.get_server(&n.name).await?),
        ServerCmd::Update(u) => {
            let req = UpdateServer {
                rank: u.rank,
                hostname: u.hostname,
                addresses: non_empty(u.addresses),
                region: u.region,
                country: u.country,
                hardware: u.hardware,
                force: u.force.then_some(true),
            };
            ctx.out.one(&api.update_server(&u.name, &req).await?)
        }
        ServerCmd::Delete(n) => {
            api.delete_server(&n.name).await?;
            ctx.out.deleted("server", &n.name)
        }
        ServerCmd::Token(t) => join_token(ctx, &api, t).await,
        ServerCmd::Drain(n) => ctx.out.one(&api.drain_server(&n.name).await?),
        ServerCmd::Undrain(n) => ctx.out.one(&api.undrain_server(&n.name).await?),
        ServerCmd::ResetAgent(n) => {
            let view = api.reset_agent(&n.name).await?;
            if ctx.out.json {
                return print_json(&view);
            }
            println!(
                "agent identity of {} forgotten: its certificate is refused from now on",
                n.name
            );
            println!(
                "to join again: hostplane server token create --cluster {} --name {}",
                view.cluster, n.name
            );
            Ok(())
        }
        ServerCmd::Stop(_) | ServerCmd::Start(_) => Ok(()),
    }
}

/// `hostplane server token ...`.
async fn join_token(ctx: &Ctx, api: &client::Client, cmd: JoinTokenCmd) -> anyhow::Result<()> {
    match cmd {
        JoinTokenCmd::Create(a) => {
            let req = CreateJoinToken {
                cluster: a.cluster.clone(),
                expires_in_minutes: Some(a.expires_in),
            };
            let created = api.create_join_token(&req).await?;
            if ctx.out.json {
                return print_json(&created);
            }
            let target = crate::login::resolve(&ctx.global)?;
            print_join_instructions(&created, &a, &target);
            Ok(())
        }
        JoinTokenCmd::List(l) => ctx.out.list(&listing!(
            api,
            l.list,
            l.list.params(),
            list_all_join_tokens,
            list_join_tokens
        )),
        JoinTokenCmd::Delete(d) => {
            api.delete_join_token(&d.id).await?;
            ctx.out.deleted("join token", &d.id)
        }
    }
}

/// The token (once) and how to start an agent with it.
fn print_join_instructions(
    created: &JoinTokenCreated,
    args: &JoinTokenCreate,
    target: &crate::login::Target,
) {
    print_fields(&[
        ("join token id", created.info.id.clone()),
        ("cluster", created.info.cluster.clone()),
        ("expires", created.info.expires_at.clone()),
    ]);
    crate::output::secret("join token", &created.token);
    let name = args.name.as_deref().unwrap_or("NAME");
    let ca = target
        .ca
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<the controller CA certificate>".into());
    println!();
    println!("on the new server (works once, until it expires):");
    println!("  install -d -m 0700 /etc/hostplane");
    println!("  cp {ca} /etc/hostplane/controller-ca.pem     # copy it over from here");
    println!(
        "  (umask 077; echo '{}' > /etc/hostplane/join-token)",
        created.token
    );
    println!("  cat > /etc/hostplane/agent.toml <<'EOF'");
    println!("name = \"{name}\"");
    println!("controllers = [\"{}\"]", target.server);
    println!("ca_file = \"/etc/hostplane/controller-ca.pem\"");
    println!("join_token_file = \"/etc/hostplane/join-token\"");
    println!("state_dir = \"/var/lib/hostplane-agent\"");
    println!("bind = \"192.0.2.10\"                 # this server's own address");
    println!("hostname = \"{name}.example.net\"");
    println!("country = \"GB\"                      # ISO 3166-1 alpha-2");
    println!("# region = \"eu-west\"");
    println!("EOF");
    println!("  hostplane agent --config /etc/hostplane/agent.toml");
}
