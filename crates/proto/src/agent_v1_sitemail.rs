//! Mail from sites (PHP `mail()`, issue 15) in the desired configs: what a web
//! server needs to submit a site's mail ([`SiteMail`]: where, and the site's
//! secret) and what a mail server needs to accept it ([`SiteLogin`]: only an
//! argon2id hash of that secret). The login name is
//! `model::sitemail::login_name(domain)`.

use serde::{Deserialize, Serialize};

/// How a site's mail leaves its web servers: submission (STARTTLS, AUTH) to the
/// domain's mail cluster. In `WebSite::mail`; `None` when the domain has no mail
/// role (then `mail()` is refused at once with a message saying so).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SiteMail {
    /// Submission endpoints (`ip:port`) of the domain's mail servers, primary
    /// first, then the secondaries.
    pub submission: Vec<String>,
    /// The site's submission secret. Travels only inside web servers' desired
    /// configs (mutual TLS; the agent caches them 0600).
    pub secret: String,
    /// The host name mail clients of the domain connect to for IMAP, POP3 and
    /// submission (the mail primary's, which its certificate is for): what the
    /// web servers answer in the domain's Thunderbird autoconfig and Outlook
    /// Autodiscover documents. `None` from older controllers (no documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_host: Option<String>,
    /// The mail cluster's client-facing names (`imap.<hostname>`, `pop.`,
    /// `smtp.`) when it has a host name: they follow the writer in DNS and every
    /// server's certificate covers them; the documents name these instead of
    /// `client_host`. `None`: the cluster has no host name (or an older
    /// controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_names: Option<ClientNames>,
}

/// The host names mail clients use per protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientNames {
    /// IMAP (993).
    pub imap: String,
    /// POP3 (995).
    pub pop3: String,
    /// Submission (465).
    pub smtp: String,
}

impl std::fmt::Debug for SiteMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteMail")
            .field("submission", &self.submission)
            .field("client_host", &self.client_host)
            .field("client_names", &self.client_names)
            .finish_non_exhaustive()
    }
}

/// The site of a mail domain may submit (login `site:<domain>`), for envelope
/// senders of the domain only. In `MailDomain::site_login`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SiteLogin {
    /// argon2id PHC string of the site's secret.
    pub password_hash: String,
}

impl std::fmt::Debug for SiteLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteLogin").finish_non_exhaustive()
    }
}
