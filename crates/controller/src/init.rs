//! `hostplane controller init`: data dir, internal CA, TLS certificate, config file,
//! store, and the first admin with a one-time token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use model::entity::Account;
use model::{AccountKind, Slug};
use store::{Actor, NewObject, Store, StoreError};

use crate::ca::{Ca, CaError};
use crate::config::{ConfigError, ControllerConfig};
use crate::files::{create_private_dir, write_atomic};

/// Name of the config file inside the data dir.
pub const CONFIG_FILE: &str = "controller.toml";

/// Init errors.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The data dir already belongs to a controller.
    #[error("{} already holds a controller config ({}); use it (`hostplane controller run --config {}`) or choose another data dir", .dir.display(), CONFIG_FILE, .dir.join(CONFIG_FILE).display())]
    Exists {
        /// The data dir.
        dir: PathBuf,
    },
    /// The options give an unusable configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An option value is invalid.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which option.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A file or directory could not be created.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA or certificate could not be made.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The store could not be created.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Data directory to create (must be empty or absent).
    pub data_dir: PathBuf,
    /// Address the controller will listen on (written into the config).
    pub listen: SocketAddr,
    /// Store URL; default a SQLite file in the data dir.
    pub store_url: Option<String>,
    /// Extra DNS names / IPs for the TLS certificate.
    pub extra_names: Vec<String>,
    /// Name of the first admin account.
    pub admin_name: String,
    /// Serve plain HTTP instead of HTTPS (loopback only).
    pub plain_http: bool,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct InitOutput {
    /// The written config file.
    pub config_path: PathBuf,
    /// The CA certificate clients must trust.
    pub ca_path: PathBuf,
    /// The first admin's API token (shown once).
    pub admin_token: String,
    /// Base URL of the API.
    pub url: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Names the API certificate is valid for.
fn cert_names(listen: SocketAddr, extra: &[String]) -> Result<Vec<String>, InitError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    for n in extra {
        let n = n.trim();
        let ok = n.parse::<std::net::IpAddr>().is_ok()
            || model::DomainName::new(n).is_ok()
            || n == "localhost";
        if !ok {
            return Err(InitError::Invalid {
                field: "extra name",
                message: format!("`{n}` is neither an IP address nor a DNS name"),
            });
        }
        names.push(n.to_owned());
    }
    Ok(names)
}

/// Create a new controller data dir.
pub async fn init(opts: InitOptions) -> Result<InitOutput, InitError> {
    let admin = Slug::new(&opts.admin_name).map_err(|e| InitError::Invalid {
        field: "admin name",
        message: e.message,
    })?;
    let data_dir = std::path::absolute(&opts.data_dir).map_err(io(&opts.data_dir))?;
    let config_path = data_dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(InitError::Exists { dir: data_dir });
    }
    let mut config = ControllerConfig::new(data_dir.clone());
    config.listen = opts.listen;
    config.store = opts.store_url.clone();
    config.tls.enabled = !opts.plain_http;
    config.validate()?;
    let names = cert_names(opts.listen, &opts.extra_names)?;

    create_private_dir(&data_dir).map_err(io(&data_dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&data_dir))?;
    }
    let (ca_cert, ca_key) = (config.ca_cert_path(), config.ca_key_path());
    let (tls_cert, tls_key) = (config.tls_cert_path(), config.tls_key_path());
    for p in [&ca_cert, &ca_key, &tls_cert, &tls_key] {
        if let Some(dir) = p.parent() {
            create_private_dir(dir).map_err(io(dir))?;
        }
    }
    let ca = Ca::generate("hostplane internal CA")?;
    ca.write(&ca_cert, &ca_key)?;
    let issued = ca.sign_server_cert(&names)?;
    write_atomic(&tls_key, issued.key_pem.as_bytes(), 0o600).map_err(io(&tls_key))?;
    let mut chain = issued.cert_pem.clone();
    chain.push_str(ca.cert_pem());
    write_atomic(&tls_cert, chain.as_bytes(), 0o644).map_err(io(&tls_cert))?;

    let store = Store::open_url(&config.store_url()).await?;
    let token = first_admin(&store, &admin).await;
    store.close().await;
    let token = token?;

    let text = format!(
        "# hostplane controller configuration (written by `hostplane controller init`).\n\
         # Every key but data_dir has a default; see the controller documentation.\n{}",
        config.to_toml()?
    );
    write_atomic(&config_path, text.as_bytes(), 0o600).map_err(io(&config_path))?;
    crate::files::sync_dir(&data_dir).map_err(io(&data_dir))?;
    Ok(InitOutput {
        config_path,
        ca_path: ca_cert,
        admin_token: token,
        url: config.url(opts.listen),
    })
}

/// Create the first admin account and its token in one transaction.
async fn first_admin(store: &Store, admin: &Slug) -> Result<String, InitError> {
    let mut tx = store
        .begin(Actor {
            account: None,
            label: "system".into(),
        })
        .await?;
    let data = Account {
        name: admin.clone(),
        kind: AccountKind::Admin,
        display_name: "Administrator".into(),
        email: None,
        reseller: None,
        default_clusters: Default::default(),
        password_hash: None,
        disabled: false,
        db_quota_mb: None,
        plan: None,
        limits: Default::default(),
        may_choose_clusters: false,
    };
    let account = tx
        .create(NewObject { name: admin.to_string(), owner: None, parent: None, data })
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => InitError::Other(format!(
                "the store already has an account `{admin}`: it belongs to another controller; use a new store"
            )),
            other => InitError::Store(other),
        })?;
    let (token, _) = crate::auth::issue_token(&mut tx, &account, "init", None, None)
        .await
        .map_err(|e| InitError::Other(e.body.message))?;
    tx.commit().await?;
    Ok(token)
}
