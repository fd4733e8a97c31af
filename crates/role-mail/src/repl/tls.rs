//! Mutual TLS of the replication port, with the identities the platform already
//! gave the servers ([`agent::peer_tls`], shared with role-web's session
//! replication): the client accepts only the exact server it meant to reach
//! (`MailPeer::server`); the server requires a client certificate from the
//! controller CA and checks its name against the cluster's peers after the
//! handshake.

use std::sync::Arc;

use agent::peer_tls::PeerIdentity;
use agent::supervisor::AgentTlsPaths;
use rustls::{ClientConfig, ServerConfig};

pub use agent::peer_tls::{common_name, TlsError};

/// This server's identity, loaded once.
#[derive(Debug, Clone)]
pub struct Identity(PeerIdentity);

impl Identity {
    /// Load the agent's certificate, key and CA.
    pub fn load(id: &AgentTlsPaths) -> Result<Self, TlsError> {
        PeerIdentity::load(id).map(Self)
    }

    /// The server side: a client certificate from the controller CA is required.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        self.0.server_config(&[])
    }

    /// The client side towards the server named `peer`.
    pub fn client_config(&self, peer: &str) -> Result<Arc<ClientConfig>, TlsError> {
        let want = peer.to_string();
        let accept = Arc::new(move |cn: &str| {
            if cn == want {
                Ok(())
            } else {
                Err(format!("expected server {want}, the peer is {cn}"))
            }
        });
        self.0.client_config(accept, &[]).map(Arc::new)
    }
}
