//! The closed sets of kinds: server roles, placement modes, database engines and
//! account kinds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::Invalid;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase wire and CLI spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                let lower = s.trim().to_ascii_lowercase();
                match lower.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Invalid::new(
                        "unknown_value",
                        format!("`{s}` is not one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}

string_enum! {
    /// What a server does. Every server has exactly one role and belongs to one
    /// cluster of that role.
    Role {
        /// HTTP(S) virtual hosting with PHP.
        Web = "web",
        /// Authoritative DNS.
        Dns = "dns",
        /// SMTP, IMAP, POP3.
        Mail = "mail",
        /// FTP(S) and origin of site content.
        Files = "files",
        /// MariaDB / PostgreSQL.
        Db = "db",
    }
}

string_enum! {
    /// How a site is placed on its web cluster.
    PlacementMode {
        /// Active on one server of the cluster; moved to another on failure.
        Single = "single",
        /// Active on every healthy server; DNS round robin.
        All = "all",
    }
}

string_enum! {
    /// Database engine of a customer database.
    DbEngine {
        /// MariaDB (MySQL protocol).
        Mariadb = "mariadb",
        /// PostgreSQL.
        Postgres = "postgres",
    }
}

string_enum! {
    /// Kind of an account. Admins manage everything; resellers manage the customers
    /// they created; customers manage their own objects.
    AccountKind {
        /// Operator with full rights.
        Admin = "admin",
        /// Manages its own customers.
        Reseller = "reseller",
        /// A tenant: owns domains and everything under them.
        Customer = "customer",
    }
}

impl Role {
    /// Roles whose clusters rank servers as primary and secondaries.
    pub fn is_ranked(self) -> bool {
        matches!(self, Role::Dns | Role::Mail)
    }

    /// Roles a domain is placed on when it is added (`db` is placed per database).
    pub const DOMAIN_ROLES: &'static [Role] = &[Role::Web, Role::Dns, Role::Mail, Role::Files];
}
