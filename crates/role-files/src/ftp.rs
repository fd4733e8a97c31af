//! The FTP/FTPS server: an accept loop over an already-bound listener that hands each
//! control connection to libunftp with the *current* settings (accounts, certificate),
//! so apply changes take effect for new logins without dropping anyone.

use std::future::Future;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use sitesync::hub::Hub;

use libunftp::options::FtpsRequired;
use libunftp::ServerBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::{Accounts, FtpUser, HashAuthenticator, HomeProvider};
use crate::storage::SiteStorage;
use crate::tls::{ftps_config, SwapCert};

/// Everything an FTP connection needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct FtpShared {
    /// The hub whose site trees FTP serves and which learns every FTP write.
    pub hub: Arc<Hub>,
    /// Live account table.
    pub accounts: Accounts,
    /// Live server certificate (FTPS is offered once one is set).
    pub cert: Arc<SwapCert>,
    /// Passive data ports.
    pub passive_ports: RangeInclusive<u16>,
    /// Refuse logins on a plain-text control connection.
    pub tls_required: bool,
    /// Shared across connections so failed-login slow-downs span connections.
    pub authenticator: Arc<HashAuthenticator>,
}

impl FtpShared {
    /// Settings with a fresh authenticator over `accounts`.
    pub fn new(
        hub: Arc<Hub>,
        accounts: Accounts,
        cert: Arc<SwapCert>,
        passive_ports: RangeInclusive<u16>,
        tls_required: bool,
    ) -> Self {
        let authenticator = Arc::new(HashAuthenticator::new(accounts.clone()));
        Self {
            hub,
            accounts,
            cert,
            passive_ports,
            tls_required,
            authenticator,
        }
    }

    fn server(&self) -> Result<libunftp::Server<SiteStorage, FtpUser>, String> {
        let hub = self.hub.clone();
        let provider = Arc::new(HomeProvider::new(self.accounts.clone(), self.hub.clone()));
        let mut b = ServerBuilder::with_user_detail_provider(
            Box::new(move || SiteStorage::new(hub.clone())),
            provider,
        )
        .authenticator(self.authenticator.clone())
        .greeting("hostplane FTP ready")
        .passive_ports(self.passive_ports.clone())
        .idle_session_timeout(600);
        if self.cert.is_set() {
            let cfg = ftps_config(self.cert.clone()).map_err(|e| e.to_string())?;
            b = b.ftps_manual::<PathBuf>(cfg);
        }
        let required = if self.tls_required {
            FtpsRequired::Accounts
        } else {
            FtpsRequired::None
        };
        b = b.ftps_required(required, required);
        b.build().map_err(|e| e.to_string())
    }
}

/// Serve FTP on `listener` until `shutdown` resolves; open sessions are then aborted.
pub async fn run_ftp(listener: TcpListener, shared: FtpShared, shutdown: impl Future<Output = ()>) {
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match shared.server() {
                    Ok(server) => {
                        sessions.spawn(async move {
                            if let Err(e) = server.service(stream).await {
                                tracing::debug!(%peer, error = %e, "ftp session ended with an error");
                            }
                        });
                    }
                    Err(e) => tracing::error!(error = %e, "cannot set up an ftp session"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "ftp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    sessions.abort_all();
}
