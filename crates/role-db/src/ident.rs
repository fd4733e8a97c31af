//! Identifiers and password verifiers, checked again on the server side before
//! anything reaches SQL: a name is `[a-z][a-z0-9_]*` (at most 32 bytes, not a
//! reserved name, see [`model::DbIdent`]), a verifier has the exact engine-native
//! shape. Only values of these types are ever placed into SQL text, so quoting is
//! wrapping and nothing else.

use std::fmt;

/// Longest name accepted (the controller's limit, below both engines' own limits).
pub const MAX_NAME_LEN: usize = 32;

/// A database or user name that is safe to put into SQL text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// A name or verifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` refused: {why}")]
pub struct Refused {
    /// What kind of value (database, user, verifier, trash entry).
    pub what: &'static str,
    /// The value, escaped for display (never a secret: verifiers are shown cut).
    pub value: String,
    /// The rule it broke.
    pub why: String,
}

impl Name {
    /// Check `input` as a database or user name.
    pub fn new(what: &'static str, input: &str) -> Result<Self, Refused> {
        let refuse = |why: String| Refused {
            what,
            value: input.escape_debug().take(64).collect(),
            why,
        };
        // Our own strict check first: never rely on a single validator.
        if input.is_empty() || input.len() > MAX_NAME_LEN {
            return Err(refuse(format!("length must be 1..={MAX_NAME_LEN}")));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(refuse("only a-z, 0-9 and _ are allowed".into()));
        }
        model::DbIdent::new(input).map_err(|e| refuse(e.to_string()))?;
        Ok(Self(input.to_owned()))
    }

    /// The name itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// MariaDB identifier quoting: `` `name` ``.
    pub fn mysql(&self) -> String {
        format!("`{}`", self.0)
    }

    /// MariaDB database name as a grant pattern, `` `a\_b` ``: in `GRANT ... ON db.*`
    /// an unescaped `_` is a wildcard and `a_b` would also grant `aXb`.
    pub fn mysql_grant_db(&self) -> String {
        format!("`{}`", self.0.replace('_', "\\_"))
    }

    /// MariaDB account: `'name'@'%'`.
    pub fn mysql_account(&self) -> String {
        format!("'{}'@'%'", self.0)
    }

    /// PostgreSQL identifier quoting: `"name"`.
    pub fn pg(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An engine-native password verifier of the exact expected shape (so it can be
/// placed between single quotes). `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier(String);

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(..)")
    }
}

fn refuse_verifier(why: &str) -> Refused {
    Refused {
        what: "password verifier",
        value: "(hidden)".into(),
        why: why.into(),
    }
}

impl Verifier {
    /// A MariaDB `mysql_native_password` hash: `*` and 40 hex digits (kept uppercase,
    /// as the server stores it).
    pub fn mariadb(input: &str) -> Result<Self, Refused> {
        let hex = input
            .strip_prefix('*')
            .ok_or_else(|| refuse_verifier("a MariaDB verifier starts with `*`"))?;
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse_verifier(
                "a MariaDB verifier is `*` and 40 hex digits",
            ));
        }
        Ok(Self(format!("*{}", hex.to_ascii_uppercase())))
    }

    /// A PostgreSQL SCRAM-SHA-256 verifier:
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
    pub fn postgres(input: &str) -> Result<Self, Refused> {
        let bad =
            || refuse_verifier("not a SCRAM-SHA-256$<iter>:<salt>$<stored>:<server> verifier");
        let rest = input.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (iter_salt, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iter, salt) = iter_salt.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let b64 = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        };
        let iter_ok = !iter.is_empty()
            && iter.len() <= 9
            && iter.bytes().all(|b| b.is_ascii_digit())
            && iter.parse::<u32>().map(|n| n > 0).unwrap_or(false);
        // StoredKey and ServerKey are SHA-256 sized (44 base64 characters); anything
        // else PostgreSQL would take for a plain password and hash again.
        let key = |s: &str| b64(s) && s.len() == 44 && s.ends_with('=');
        if !(iter_ok && b64(salt) && key(stored) && key(server)) {
            return Err(bad());
        }
        Ok(Self(input.to_owned()))
    }

    /// The verifier for `engine`.
    pub fn for_engine(engine: model::DbEngine, input: &str) -> Result<Self, Refused> {
        match engine {
            model::DbEngine::Mariadb => Self::mariadb(input),
            model::DbEngine::Postgres => Self::postgres(input),
        }
    }

    /// The verifier as an SQL string literal: `'...'` (its alphabet has no quote or
    /// backslash, checked at construction).
    pub fn literal(&self) -> String {
        format!("'{}'", self.0)
    }

    /// The verifier text (compare with what the server stores).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first words of an SQL statement for error messages and logs, cut before
/// any verifier literal (`... PASSWORD '...'`).
pub fn redact(sql: &str) -> String {
    let end = sql.find(" PASSWORD").map(|i| i + " PASSWORD".len());
    let shown: String = sql[..end.unwrap_or(sql.len())].chars().take(80).collect();
    if end.is_some() {
        format!("{shown} (verifier hidden)")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::new("database", "shop_db1").is_ok());
        for bad in [
            "",
            "a`b",
            "x; DROP TABLE y",
            "a'b",
            "a\"b",
            "A",
            "1abc",
            "pg_x",
            "mysql",
            "hostplane",
            "a-b",
            "é",
            &"a".repeat(33),
        ] {
            assert!(Name::new("database", bad).is_err(), "{bad:?}");
        }
        let n = Name::new("database", "a_b").unwrap();
        assert_eq!(n.mysql_grant_db(), "`a\\_b`");
        assert_eq!(n.mysql_account(), "'a_b'@'%'");
        assert_eq!(n.pg(), "\"a_b\"");
    }

    #[test]
    fn redaction() {
        let sql =
            "ALTER USER 'u'@'%' IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'";
        let r = redact(sql);
        assert!(
            !r.contains("2470") && r.starts_with("ALTER USER 'u'@'%'"),
            "{r}"
        );
        assert!(!redact("ALTER ROLE \"u\" PASSWORD 'SCRAM-SHA-256$4096:x$y:z'").contains("SCRAM"));
        assert_eq!(redact("DROP DATABASE `d`"), "DROP DATABASE `d`");
    }

    #[test]
    fn verifiers() {
        let m = Verifier::mariadb("*2470c0c06dee42fd1618bb99005adca2ec9d1e19").unwrap();
        assert_eq!(m.as_str(), "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19");
        assert!(Verifier::mariadb("2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19").is_err());
        assert!(Verifier::mariadb("*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1'").is_err());
        let k = format!("{}=", "A".repeat(43));
        let p = &format!("SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==${k}:{k}");
        assert!(Verifier::postgres(p).is_ok());
        for bad in [
            "md5abc",
            "SCRAM-SHA-256$4096:salt$stored:server'--",
            "SCRAM-SHA-256$x:salt$a:b",
            "SCRAM-SHA-256$4096:salt$a",
            "SCRAM-SHA-256$0:salt$a:b",
            "SCRAM-SHA-256$4096:salt$abc+/=:def=",
        ] {
            assert!(Verifier::postgres(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", Verifier::postgres(p).unwrap()),
            "Verifier(..)"
        );
    }
}
