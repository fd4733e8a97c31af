//! `POST /v1/agent/rehash` (mutual TLS, agents only): a mail or FTP server saw the
//! first right login against an imported legacy password hash and made its argon2id
//! replacement; the controller stores it if the stored hash is still `old_hash` and
//! the server holds the object.

use serde::{Deserialize, Serialize};

/// The path of the endpoint.
pub const REHASH_PATH: &str = "/v1/agent/rehash";

/// One replaced hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RehashReport {
    /// `mailbox` or `ftp_account`.
    pub kind: String,
    /// The mailbox address or FTP user name.
    pub name: String,
    /// The legacy hash the login was checked against.
    pub old_hash: String,
    /// Its argon2id replacement.
    pub new_hash: String,
}

/// The controller's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RehashAck {
    /// Whether the store now holds `new_hash` (false: the hash had changed meanwhile
    /// or the object is gone).
    pub replaced: bool,
}
