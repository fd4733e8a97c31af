//! Mutual TLS between the web servers of a cluster for session replication: the
//! agents' certificates through [`agent::peer_tls`], accepting a peer whose name
//! is one of the cluster's servers ([`PeerNames`]); the server side checks the
//! same names per request.

use std::collections::BTreeSet;
use std::sync::Arc;

use agent::peer_tls::PeerIdentity;
use agent::supervisor::AgentTlsPaths;
use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};

pub use agent::peer_tls::{common_name, TlsError};

/// The server names of this server's cluster peers (swapped on each config).
pub type PeerNames = Arc<ArcSwap<BTreeSet<String>>>;

const ALPN: &[&[u8]] = &[b"http/1.1"];

/// The server side: a client certificate from the controller CA is required (which
/// server it names is checked per request against [`PeerNames`]).
pub fn server_config(id: &AgentTlsPaths) -> Result<Arc<ServerConfig>, TlsError> {
    PeerIdentity::load(id)?.server_config(ALPN)
}

/// The client side: presents this server's certificate, accepts only a peer whose
/// certificate chains to the controller CA and names a server of `names`.
pub fn client_config(id: &AgentTlsPaths, names: PeerNames) -> Result<ClientConfig, TlsError> {
    let accept = Arc::new(move |cn: &str| {
        if names.load().contains(cn) {
            Ok(())
        } else {
            Err(format!("{cn} is not a server of this cluster"))
        }
    });
    PeerIdentity::load(id)?.client_config(accept, ALPN)
}
