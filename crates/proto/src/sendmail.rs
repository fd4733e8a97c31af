//! The local protocol between `hostplane sendmail` (run by a site's PHP as the
//! site's user) and the web engine's sendmail socket: one [`SendmailRequest`] JSON
//! line, then the message bytes until the client shuts its writing half; the engine
//! answers one [`SendmailReply`] JSON line after the message is durably spooled
//! (or refused). Who sends is never in the request: the engine knows the site from
//! the socket peer's uid.

use serde::{Deserialize, Serialize};

/// Format of this protocol; [`SendmailRequest::format`].
pub const SENDMAIL_FORMAT: u32 = 1;

/// What sendmail was asked on its command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendmailRequest {
    /// [`SENDMAIL_FORMAT`].
    pub format: u32,
    /// `-f`: the envelope sender asked for (a local part or an address of the
    /// site's domain); `None`: the site's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `-t`: take the recipients from the `To:`, `Cc:` and `Bcc:` headers (and
    /// remove `Bcc:`), besides those given as arguments.
    #[serde(default)]
    pub extract: bool,
    /// Recipients given as arguments.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendmailReply {
    /// The message is spooled (fsynced) and will be submitted.
    pub ok: bool,
    /// The spool id when `ok`, else why not (shown to the site on stderr).
    pub detail: String,
}
