//! `[acme]` of the controller config: which ACME CA issues the sites' publicly
//! trusted certificates (issue 17). No `[acme]`: no ACME, every site keeps its
//! internal certificate (or the one its customer uploaded).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::queue::Limits;
use crate::config::ConfigError;

/// Let's Encrypt's production directory.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous limits).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// `[acme]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory: `letsencrypt`, `letsencrypt-staging` or an `https://` URL.
    pub directory: String,
    /// Contact address given to the CA (expiry notices, policy changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Extra roots (PEM) trusted for the ACME server's own HTTPS, beside the
    /// system's: for a test CA such as Pebble. Relative to `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// External Account Binding key id (CAs that require one, RFC 8555 7.3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab_kid: Option<String>,
    /// External Account Binding HMAC key, base64url as the CA hands it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab_hmac_key: Option<String>,
    /// The issuer domains by which CAA records name this CA (RFC 8659 `issue`
    /// values); a name whose CAA does not allow them is left out of orders.
    /// Empty: `letsencrypt.org` for Let's Encrypt, no CAA check for another CA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// The CA's limit of failed validations per name per hour (Let's Encrypt: 5).
    #[serde(default = "default_failed")]
    pub failed_validations_per_hour: u32,
    /// The CA's limit of new orders per account per 3 hours (Let's Encrypt: 300).
    #[serde(default = "default_orders")]
    pub orders_per_3h: u32,
    /// The CA's limit of certificates per registered domain per week (Let's
    /// Encrypt: 50).
    #[serde(default = "default_certs")]
    pub certs_per_domain_week: u32,
}

fn default_failed() -> u32 {
    Limits::default().failed_validations_per_hour
}
fn default_orders() -> u32 {
    Limits::default().orders_per_3h
}
fn default_certs() -> u32 {
    Limits::default().certs_per_domain_week
}

impl AcmeConfig {
    /// `[acme]` with `directory` and everything else at its default (Let's
    /// Encrypt's limits, no email, no extra roots, no EAB).
    pub fn new(directory: impl Into<String>) -> Self {
        let l = Limits::default();
        AcmeConfig {
            directory: directory.into(),
            email: None,
            ca_file: None,
            eab_kid: None,
            eab_hmac_key: None,
            failed_validations_per_hour: l.failed_validations_per_hour,
            orders_per_3h: l.orders_per_3h,
            certs_per_domain_week: l.certs_per_domain_week,
            caa_identities: Vec::new(),
        }
    }

    /// The CA's limits the order queue keeps under.
    pub fn limits(&self) -> Limits {
        Limits {
            failed_validations_per_hour: self.failed_validations_per_hour,
            orders_per_3h: self.orders_per_3h,
            certs_per_domain_week: self.certs_per_domain_week,
        }
    }

    /// The directory URL in effect (presets expanded).
    pub fn directory_url(&self) -> &str {
        match self.directory.as_str() {
            "letsencrypt" => LETSENCRYPT,
            "letsencrypt-staging" => LETSENCRYPT_STAGING,
            url => url,
        }
    }

    /// The extra roots file in effect, relative paths under `data_dir`.
    pub fn ca_file_path(&self, data_dir: &Path) -> Option<PathBuf> {
        self.ca_file.as_ref().map(|p| match p.is_absolute() {
            true => p.clone(),
            false => data_dir.join(p),
        })
    }

    /// The EAB HMAC key's bytes, when both EAB keys are set.
    pub fn eab(&self) -> Option<(String, Vec<u8>)> {
        let kid = self.eab_kid.clone()?;
        let key = decode_eab(self.eab_hmac_key.as_deref()?)?;
        Some((kid, key))
    }

    /// Check values that parse but cannot work. Pure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.directory_url();
        let host = url.strip_prefix("https://").unwrap_or_default();
        if host.is_empty() || url.parse::<http::Uri>().is_err() {
            return Err(ConfigError::Invalid {
                key: "acme.directory",
                message: format!(
                    "`{}` is neither `letsencrypt`, `letsencrypt-staging` nor an https:// URL",
                    self.directory
                ),
            });
        }
        if let Some(email) = &self.email {
            let ok = email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'))
                && !email
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ',');
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "acme.email",
                    message: format!("`{email}` is not an email address"),
                });
            }
        }
        if let Some(bad) = self
            .caa_identities
            .iter()
            .find(|i| model::DomainName::new(i).is_err())
        {
            return Err(ConfigError::Invalid {
                key: "acme.caa_identities",
                message: format!("`{bad}` is not an issuer domain name (like letsencrypt.org)"),
            });
        }
        for (key, v) in [
            (
                "acme.failed_validations_per_hour",
                self.failed_validations_per_hour,
            ),
            ("acme.orders_per_3h", self.orders_per_3h),
            ("acme.certs_per_domain_week", self.certs_per_domain_week),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be at least 1 (the CA's limit; Let's Encrypt's is the default)"
                        .into(),
                });
            }
        }
        match (&self.eab_kid, &self.eab_hmac_key) {
            (None, None) => {}
            (Some(kid), Some(key)) => {
                if kid.is_empty() {
                    return Err(ConfigError::Invalid {
                        key: "acme.eab_kid",
                        message: "must not be empty".into(),
                    });
                }
                if decode_eab(key).is_none() {
                    return Err(ConfigError::Invalid {
                        key: "acme.eab_hmac_key",
                        message: "must be the base64url key the CA gave (at least 16 bytes)".into(),
                    });
                }
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: "acme.eab_kid",
                    message: "External Account Binding needs both eab_kid and eab_hmac_key".into(),
                })
            }
        }
        Ok(())
    }
}

fn decode_eab(key: &str) -> Option<Vec<u8>> {
    let key = key.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .ok()?;
    (bytes.len() >= 16).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use crate::config::ControllerConfig;

    #[test]
    fn presets_urls_and_refusals() {
        let c = ControllerConfig::parse(
            "data_dir = \"/d\"\n[acme]\ndirectory = \"letsencrypt-staging\"\nemail = \"ops@example.com\"\nca_file = \"pebble.pem\"",
        )
        .unwrap();
        let a = c.acme.unwrap();
        assert_eq!(a.directory_url(), super::LETSENCRYPT_STAGING);
        assert_eq!(a.limits(), super::Limits::default(), "Let's Encrypt's");
        assert_eq!(
            a.ca_file_path("/d".as_ref()).unwrap(),
            std::path::PathBuf::from("/d/pebble.pem")
        );
        assert!(ControllerConfig::parse("data_dir = \"/d\"")
            .unwrap()
            .acme
            .is_none());
        let url = "data_dir = \"/d\"\n[acme]\ndirectory = \"https://127.0.0.1:14000/dir\"";
        let a = ControllerConfig::parse(url).unwrap().acme.unwrap();
        assert_eq!(a.directory_url(), "https://127.0.0.1:14000/dir");
        for (bad, key) in [
            ("directory = \"http://x/dir\"", "acme.directory"),
            ("directory = \"letsencrypt-prod\"", "acme.directory"),
            (
                "directory = \"letsencrypt\"\nemail = \"nobody\"",
                "acme.email",
            ),
            (
                "directory = \"letsencrypt\"\neab_kid = \"k\"",
                "acme.eab_kid",
            ),
            (
                "directory = \"letsencrypt\"\neab_kid = \"k\"\neab_hmac_key = \"!!\"",
                "acme.eab_hmac_key",
            ),
            (
                "directory = \"letsencrypt\"\ndirectroy = \"x\"",
                "directroy",
            ),
            (
                "directory = \"letsencrypt\"\ncaa_identities = [\"not a name\"]",
                "acme.caa_identities",
            ),
            (
                "directory = \"letsencrypt\"\norders_per_3h = 0",
                "acme.orders_per_3h",
            ),
        ] {
            let e =
                ControllerConfig::parse(&format!("data_dir = \"/d\"\n[acme]\n{bad}")).unwrap_err();
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
        let eab = "directory = \"letsencrypt\"\neab_kid = \"kid-1\"\neab_hmac_key = \"zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W\"";
        let a = ControllerConfig::parse(&format!("data_dir = \"/d\"\n[acme]\n{eab}"))
            .unwrap()
            .acme
            .unwrap();
        assert_eq!(a.eab().unwrap().0, "kid-1");
    }
}
