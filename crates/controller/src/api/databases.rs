//! `/v1/databases` and `/v1/db-users`. Database users store an engine-native
//! password verifier, never the password; grants reach only the same customer's
//! databases of the same engine and cluster.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use model::entity::{Account, Cluster, Database, DbUser, Domain, Kind};
use model::{DbEngine, DbIdent, Id, Role, WithField};
use proto::agent_v1::RoleReport;
use proto::v1::{
    CreateDatabase, CreateDbUser, DatabaseView, DbTrashView, DbUserView, ErrorBody, ListParams,
    Page, UpdateDatabase, UpdateDbUser, WithPassword,
};
use scheduler::default_cluster;
use store::{NewObject, Scope, Stored};

use super::{
    body_domain, filters, list_page, owning_customer, password_or_generate, rfc3339, visible,
    Names, Paging,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::secrets::db_verifier;
use crate::state::AppState;

/// A database as shown.
pub async fn database_view(names: &mut Names<'_>, d: &Stored<Database>) -> ApiResult<DatabaseView> {
    Ok(DatabaseView {
        name: d.meta.name.clone(),
        engine: d.data.engine.to_string(),
        customer: names.account(d.data.customer).await?,
        cluster: names.cluster(d.data.cluster).await?,
        domain: match d.data.domain {
            Some(id) => Some(names.domain(id).await?),
            None => None,
        },
        size_bytes: None,
        created_at: rfc3339(d.meta.created_at),
    })
}

/// What the db servers last reported: each server's (name, cluster) and report.
async fn db_reports(state: &AppState) -> ApiResult<Vec<(String, Id, std::sync::Arc<RoleReport>)>> {
    let servers = state.store.all::<model::entity::Server>().await?;
    Ok(servers
        .into_iter()
        .filter(|s| s.data.role == Role::Db)
        .filter_map(|s| {
            let r = state.health.report(s.meta.id)?;
            Some((s.meta.name, s.data.cluster, r))
        })
        .collect())
}

/// Fill each view's size from the reports of its cluster's servers.
fn fill_sizes(
    reports: &[(String, Id, std::sync::Arc<RoleReport>)],
    rows: &[Stored<Database>],
    views: &mut [DatabaseView],
) {
    for (d, v) in rows.iter().zip(views.iter_mut()) {
        v.size_bytes = reports
            .iter()
            .filter(|(_, cluster, _)| *cluster == d.data.cluster)
            .filter_map(|(_, _, r)| match r.as_ref() {
                RoleReport::Db(db) => db
                    .databases
                    .iter()
                    .find(|s| s.name == d.meta.name && s.engine == d.data.engine)
                    .map(|s| s.size_bytes),
                RoleReport::Mail(_) | RoleReport::Files(_) | RoleReport::Web(_) => None,
            })
            .max();
    }
}

/// `GET /v1/db-trash`: dumps of dropped databases the caller may restore.
#[utoipa::path(get, path = "/v1/db-trash", tag = "databases", responses((status = 200, body = Vec<DbTrashView>)))]
pub async fn list_trash(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<DbTrashView>>> {
    let mut names = Names::new(&state.store);
    let mut out = Vec::new();
    for (server, cluster, report) in db_reports(&state).await? {
        let RoleReport::Db(db) = report.as_ref() else {
            continue;
        };
        for t in &db.trash {
            let Some(owner) = state
                .store
                .get_by_name::<Account>(caller.scope(), &t.owner)
                .await?
            else {
                // Not the caller's (or the account is gone): not shown.
                continue;
            };
            out.push(DbTrashView {
                name: t.name.clone(),
                database: t.database.clone(),
                engine: t.engine.to_string(),
                customer: owner.meta.name,
                cluster: names.cluster(cluster).await?,
                server: server.clone(),
                dropped_at: t.dropped_at.clone(),
                size_bytes: t.size_bytes,
            });
        }
    }
    out.sort_by(|a, b| b.dropped_at.cmp(&a.dropped_at));
    Ok(Json(out))
}

/// Check that trash entry `entry` exists on a server of `cluster`, for `engine`,
/// and belonged to `owner`.
async fn check_restore(
    state: &AppState,
    entry: &str,
    cluster: Id,
    engine: DbEngine,
    owner: &str,
) -> ApiResult<()> {
    let found = db_reports(state)
        .await?
        .into_iter()
        .filter(|(_, c, _)| *c == cluster)
        .any(|(_, _, r)| match r.as_ref() {
            RoleReport::Db(db) => db
                .trash
                .iter()
                .any(|t| t.name == entry && t.engine == engine && t.owner == owner),
            RoleReport::Mail(_) | RoleReport::Files(_) | RoleReport::Web(_) => false,
        });
    if found {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "restore_from",
            "unknown_trash_entry",
            format!(
                "no {engine} trash entry `{entry}` of this customer on the db cluster; list them with `hostplane db trash`"
            ),
        ))
    }
}

/// A database user as shown.
pub async fn db_user_view(names: &mut Names<'_>, u: &Stored<DbUser>) -> ApiResult<DbUserView> {
    let mut databases = Vec::with_capacity(u.data.databases.len());
    for id in &u.data.databases {
        databases.push(names.of::<Database>(*id).await?);
    }
    Ok(DbUserView {
        name: u.meta.name.clone(),
        engine: u.data.engine.to_string(),
        customer: names.account(u.data.customer).await?,
        cluster: names.cluster(u.data.cluster).await?,
        databases,
        created_at: rfc3339(u.meta.created_at),
    })
}

/// The db cluster for a new database or user: named, else the customer's default,
/// else the operator's default.
async fn db_cluster(
    state: &AppState,
    named: Option<&str>,
    owner: &Stored<Account>,
) -> ApiResult<Stored<Cluster>> {
    let id = match named {
        Some(n) => {
            let c = state
                .store
                .get_by_name::<Cluster>(Scope::All, n)
                .await?
                .ok_or_else(|| ApiError::invalid("cluster", "unknown_cluster", format!("there is no cluster `{n}`")))?;
            if c.data.role != Role::Db {
                return Err(ApiError::invalid("cluster", "wrong_role", format!("cluster `{n}` is a {} cluster, not a db cluster", c.data.role)));
            }
            return Ok(c);
        }
        None => match owner.data.default_clusters.get(&Role::Db) {
            Some(id) => *id,
            None => default_cluster(&crate::placement::cluster_snapshot(state).await?, Role::Db).ok_or_else(|| {
                ApiError::infeasible("no db cluster to place it on: create one (`hostplane cluster add NAME --role db --default`) or name one")
            })?,
        },
    };
    state
        .store
        .get::<Cluster>(Scope::All, id)
        .await?
        .filter(|c| c.data.role == Role::Db)
        .ok_or_else(|| ApiError::infeasible("the default db cluster no longer exists"))
}

/// The customer's own domain to link a database to ("" = none).
async fn link_domain(
    state: &AppState,
    caller: &Caller,
    name: &str,
    customer: Id,
) -> ApiResult<Option<Id>> {
    if name.is_empty() {
        return Ok(None);
    }
    let d: Stored<Domain> = body_domain(state, caller, name, "domain").await?;
    if d.data.customer != customer {
        return Err(ApiError::invalid(
            "domain",
            "foreign_domain",
            format!("`{name}` belongs to another customer"),
        ));
    }
    Ok(Some(d.meta.id))
}

/// `POST /v1/databases`.
#[utoipa::path(post, path = "/v1/databases", tag = "databases", request_body = CreateDatabase,
    responses((status = 201, body = DatabaseView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_database(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDatabase>,
) -> ApiResult<(StatusCode, Json<DatabaseView>)> {
    let name = DbIdent::new(&req.name).field("name")?;
    let engine: DbEngine = req.engine.parse().field("engine")?;
    let owner = owning_customer(&state, &caller, req.customer.as_deref()).await?;
    if req.cluster.is_some() {
        crate::limits::may_choose_clusters(&caller, "cluster")?;
    }
    let cluster = db_cluster(&state, req.cluster.as_deref(), &owner).await?;
    let domain = link_domain(
        &state,
        &caller,
        req.domain.as_deref().unwrap_or(""),
        owner.meta.id,
    )
    .await?;
    if let Some(entry) = &req.restore_from {
        check_restore(&state, entry, cluster.meta.id, engine, &owner.meta.name).await?;
    }
    let data = Database {
        customer: owner.meta.id,
        name: name.clone(),
        engine,
        cluster: cluster.meta.id,
        domain,
        restore_from: req.restore_from.clone(),
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    if tx.get::<Cluster>(cluster.meta.id).await?.is_none() {
        return Err(ApiError::infeasible(
            "the db cluster was removed meanwhile; try again",
        ));
    }
    crate::limits::check_count(
        &mut tx,
        &state.config.default_plan,
        owner.meta.id,
        Kind::Database,
    )
    .await?;
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: Some(owner.meta.id),
            parent: Some(owner.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(database_view(&mut Names::new(&state.store), &created).await?),
    ))
}

/// `GET /v1/databases`.
#[utoipa::path(get, path = "/v1/databases", tag = "databases", params(ListParams), responses((status = 200, body = Page<DatabaseView>)))]
pub async fn list_databases(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<DatabaseView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, _) = filters(&state, &caller, &params, false, false).await?;
    let (rows, next) = list_page::<Database>(&state, caller.scope(), paging, owner, None).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for d in &rows {
        items.push(database_view(&mut names, d).await?);
    }
    fill_sizes(&db_reports(&state).await?, &rows, &mut items);
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/databases/{name}`.
#[utoipa::path(get, path = "/v1/databases/{name}", tag = "databases", params(("name" = String, Path)),
    responses((status = 200, body = DatabaseView), (status = 404, body = ErrorBody)))]
pub async fn get_database(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DatabaseView>> {
    let d = visible::<Database>(&state, &caller, &name, "database").await?;
    let mut view = [database_view(&mut Names::new(&state.store), &d).await?];
    fill_sizes(
        &db_reports(&state).await?,
        std::slice::from_ref(&d),
        &mut view,
    );
    let [view] = view;
    Ok(Json(view))
}

/// `PATCH /v1/databases/{name}`: link to a domain or unlink ("").
#[utoipa::path(patch, path = "/v1/databases/{name}", tag = "databases", params(("name" = String, Path)),
    request_body = UpdateDatabase, responses((status = 200, body = DatabaseView), (status = 404, body = ErrorBody)))]
pub async fn update_database(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateDatabase>,
) -> ApiResult<Json<DatabaseView>> {
    let d = visible::<Database>(&state, &caller, &name, "database").await?;
    let domain = match req.domain.as_deref() {
        Some(n) => Some(link_domain(&state, &caller, n, d.data.customer).await?),
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<Database>(d.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("database not found"))?;
    if let Some(link) = domain {
        if let Some(id) = link {
            if tx.get::<Domain>(id).await?.is_none() {
                return Err(ApiError::invalid(
                    "domain",
                    "unknown_domain",
                    "the domain was deleted meanwhile",
                ));
            }
        }
        cur.data.domain = link;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        database_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/databases/{name}`: also removes it from its users' grants.
#[utoipa::path(delete, path = "/v1/databases/{name}", tag = "databases", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_database(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let d = visible::<Database>(&state, &caller, &name, "database").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    for mut u in tx.children::<DbUser>(d.data.customer).await? {
        if u.data.databases.contains(&d.meta.id) {
            u.data.databases.retain(|x| *x != d.meta.id);
            tx.update(u.meta.id, &u.meta.name, u.data).await?;
        }
    }
    tx.delete(Kind::Database, d.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The engine of a new user given without one: that of its first granted
/// database ([`grants`] then refuses databases of another engine).
async fn inferred_engine(
    state: &AppState,
    caller: &Caller,
    databases: Option<&[String]>,
) -> ApiResult<DbEngine> {
    let Some(first) = databases.and_then(<[String]>::first) else {
        return Err(ApiError::invalid(
            "engine",
            "required",
            "give the engine (mariadb or postgres) or a database to grant",
        ));
    };
    let db = state
        .store
        .get_by_name::<Database>(caller.scope(), first)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "databases[0]",
                "unknown_database",
                format!("there is no database `{first}`"),
            )
        })?;
    Ok(db.data.engine)
}

/// Resolve granted database names: the same customer's, same engine and cluster.
async fn grants(
    state: &AppState,
    caller: &Caller,
    names: &[String],
    customer: Id,
    engine: DbEngine,
    cluster: Option<Id>,
) -> ApiResult<(Vec<Id>, Option<Id>)> {
    let mut ids = Vec::new();
    let mut cluster = cluster;
    for (i, n) in names.iter().enumerate() {
        let field = format!("databases[{i}]");
        let db = state
            .store
            .get_by_name::<Database>(caller.scope(), n)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    &field,
                    "unknown_database",
                    format!("there is no database `{n}`"),
                )
            })?;
        if db.data.customer != customer {
            return Err(ApiError::invalid(
                field,
                "foreign_database",
                format!("database `{n}` belongs to another customer"),
            ));
        }
        if db.data.engine != engine {
            return Err(ApiError::invalid(
                field,
                "wrong_engine",
                format!(
                    "database `{n}` is a {} database, the user is {engine}; a user's databases share one engine",
                    db.data.engine
                ),
            ));
        }
        match cluster {
            Some(c) if c != db.data.cluster => {
                return Err(ApiError::invalid(
                    field,
                    "wrong_cluster",
                    format!("database `{n}` is on another db cluster than the user"),
                ))
            }
            _ => cluster = Some(db.data.cluster),
        }
        if !ids.contains(&db.meta.id) {
            ids.push(db.meta.id);
        }
    }
    Ok((ids, cluster))
}

/// `POST /v1/db-users`: a generated password is returned once when none is given.
#[utoipa::path(post, path = "/v1/db-users", tag = "databases", request_body = CreateDbUser,
    responses((status = 201, body = WithPassword<DbUserView>), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_db_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDbUser>,
) -> ApiResult<(StatusCode, Json<WithPassword<DbUserView>>)> {
    let name = DbIdent::new(&req.name).field("name")?;
    let owner = owning_customer(&state, &caller, req.customer.as_deref()).await?;
    let engine = match req.engine.as_deref() {
        Some(e) => e.parse::<DbEngine>().field("engine")?,
        None => inferred_engine(&state, &caller, req.databases.as_deref()).await?,
    };
    let (password, generated) = password_or_generate(req.password, "password")?;
    if let Some(n) = req.cluster.as_deref() {
        if crate::limits::may_choose_clusters(&caller, "cluster").is_err() {
            // A customer names only a cluster it already holds a database on.
            let mut q = store::ListQuery::new(Scope::All, 1000);
            q.owner = Some(owner.meta.id);
            let mut names = Names::new(&state.store);
            let mut holds = false;
            for db in state.store.list::<Database>(&q).await? {
                holds |= names.cluster(db.data.cluster).await? == n;
            }
            if !holds {
                return Err(ApiError::forbidden(
                    "database users go on a cluster holding your databases; leave `cluster` out or grant a database",
                )
                .with_field("cluster"));
            }
        }
    }
    let named_cluster = match req.cluster.as_deref() {
        Some(n) => Some(db_cluster(&state, Some(n), &owner).await?.meta.id),
        None => None,
    };
    let (databases, cluster) = grants(
        &state,
        &caller,
        req.databases.as_deref().unwrap_or_default(),
        owner.meta.id,
        engine,
        named_cluster,
    )
    .await?;
    let cluster = match cluster {
        Some(c) => c,
        None => db_cluster(&state, None, &owner).await?.meta.id,
    };
    let password_verifier = tokio::task::spawn_blocking(move || db_verifier(engine, &password))
        .await
        .map_err(ApiError::internal)?;
    let data = DbUser {
        customer: owner.meta.id,
        name: name.clone(),
        engine,
        cluster,
        password_verifier,
        databases,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    for id in &data.databases {
        if tx.get::<Database>(*id).await?.is_none() {
            return Err(ApiError::invalid(
                "databases",
                "unknown_database",
                "a granted database was deleted meanwhile",
            ));
        }
    }
    let created = tx
        .create(NewObject {
            name: name.to_string(),
            owner: Some(owner.meta.id),
            parent: Some(owner.meta.id),
            data,
        })
        .await?;
    tx.commit().await?;
    let object = db_user_view(&mut Names::new(&state.store), &created).await?;
    Ok((
        StatusCode::CREATED,
        Json(WithPassword {
            object,
            generated_password: generated,
        }),
    ))
}

/// `GET /v1/db-users`.
#[utoipa::path(get, path = "/v1/db-users", tag = "databases", params(ListParams), responses((status = 200, body = Page<DbUserView>)))]
pub async fn list_db_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<DbUserView>>> {
    let paging = Paging::new(params.cursor.as_deref(), params.limit)?;
    let (owner, _) = filters(&state, &caller, &params, false, false).await?;
    let (rows, next) = list_page::<DbUser>(&state, caller.scope(), paging, owner, None).await?;
    let mut names = Names::new(&state.store);
    let mut items = Vec::with_capacity(rows.len());
    for u in &rows {
        items.push(db_user_view(&mut names, u).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// `GET /v1/db-users/{name}`.
#[utoipa::path(get, path = "/v1/db-users/{name}", tag = "databases", params(("name" = String, Path)),
    responses((status = 200, body = DbUserView), (status = 404, body = ErrorBody)))]
pub async fn get_db_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DbUserView>> {
    let u = visible::<DbUser>(&state, &caller, &name, "database user").await?;
    Ok(Json(db_user_view(&mut Names::new(&state.store), &u).await?))
}

/// `PATCH /v1/db-users/{name}`.
#[utoipa::path(patch, path = "/v1/db-users/{name}", tag = "databases", params(("name" = String, Path)),
    request_body = UpdateDbUser, responses((status = 200, body = DbUserView), (status = 404, body = ErrorBody)))]
pub async fn update_db_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateDbUser>,
) -> ApiResult<Json<DbUserView>> {
    let u = visible::<DbUser>(&state, &caller, &name, "database user").await?;
    let verifier = match req.password {
        Some(p) => {
            let p = model::Password::new(&p)
                .field("password")?
                .expose()
                .to_owned();
            let engine = u.data.engine;
            Some(
                tokio::task::spawn_blocking(move || db_verifier(engine, &p))
                    .await
                    .map_err(ApiError::internal)?,
            )
        }
        None => None,
    };
    let databases = match req.databases.as_deref() {
        Some(list) => Some(
            grants(
                &state,
                &caller,
                list,
                u.data.customer,
                u.data.engine,
                Some(u.data.cluster),
            )
            .await?
            .0,
        ),
        None => None,
    };
    let mut tx = state.store.begin(caller.actor()).await?;
    let mut cur = tx
        .get::<DbUser>(u.meta.id)
        .await?
        .ok_or_else(|| ApiError::not_found("database user not found"))?;
    if let Some(v) = verifier {
        cur.data.password_verifier = v;
    }
    if let Some(d) = databases {
        for id in &d {
            if tx.get::<Database>(*id).await?.is_none() {
                return Err(ApiError::invalid(
                    "databases",
                    "unknown_database",
                    "a granted database was deleted meanwhile",
                ));
            }
        }
        cur.data.databases = d;
    }
    let updated = tx.update(cur.meta.id, &cur.meta.name, cur.data).await?;
    tx.commit().await?;
    Ok(Json(
        db_user_view(&mut Names::new(&state.store), &updated).await?,
    ))
}

/// `DELETE /v1/db-users/{name}`.
#[utoipa::path(delete, path = "/v1/db-users/{name}", tag = "databases", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_db_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let u = visible::<DbUser>(&state, &caller, &name, "database user").await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    tx.delete(Kind::DbUser, u.meta.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
