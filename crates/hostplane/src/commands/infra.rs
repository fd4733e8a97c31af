//! `cluster` and `server`: the operator's infrastructure.

use proto::v1::{CreateCluster, CreateServer, ListParams, UpdateCluster, UpdateServer};

use super::{listing, non_empty, Ctx};
use crate::cli::{ClusterCmd, ServerCmd};

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
            };
            ctx.out.one(&api.update_cluster(&u.name, &req).await?)
        }
        ClusterCmd::Delete(n) => {
            api.delete_cluster(&n.name).await?;
            ctx.out.deleted("cluster", &n.name)
        }
    }
}

/// `hostplane server ...`.
pub async fn server(ctx: &Ctx, cmd: ServerCmd) -> anyhow::Result<()> {
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
    }
}
