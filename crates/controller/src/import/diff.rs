//! How an existing object differs from an import line (pure), for the report of a
//! re-run: identical objects are skipped, different ones refused with this text.

/// `field: stored X, file Y` for every pair that differs; `None` when all agree.
pub fn diff(pairs: &[(&str, String, String)]) -> Option<String> {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, stored, file)| stored != file)
        .map(|(field, stored, file)| format!("{field}: stored `{stored}`, file `{file}`"))
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(format!("already exists and differs ({})", parts.join("; ")))
    }
}

/// Whether a stored password hash agrees with the file's: equal, or the stored one
/// is argon2id while the file's is a legacy hash (rehashed at a login since the
/// import, which only the right password can cause).
pub fn same_hash(stored: &str, file: &str) -> bool {
    stored == file
        || (matches!(passhash::scheme(stored), Ok(passhash::Scheme::Argon2id))
            && passhash::scheme(file).is_ok_and(passhash::Scheme::is_legacy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_difference() {
        assert_eq!(diff(&[("php", "true".into(), "true".into())]), None);
        let d = diff(&[
            ("php", "false".into(), "true".into()),
            ("mode", "single".into(), "single".into()),
            ("customer", "acme".into(), "other".into()),
        ])
        .expect("differs");
        assert!(d.contains("php: stored `false`, file `true`"), "{d}");
        assert!(d.contains("customer: stored `acme`, file `other`"), "{d}");
        assert!(!d.contains("mode"), "{d}");
    }

    #[test]
    fn a_rehashed_password_still_agrees() {
        let md5 = "$1$saltsalt$ZtMHw9WXbhe3pPBkCQJKC1";
        let argon = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Vh5TaTOmCkdwlJQd4xWgSq8WzVEnJcKXkNYRtmSBfQ";
        assert!(same_hash(md5, md5));
        assert!(same_hash(argon, md5));
        assert!(!same_hash(md5, "$1$othersal$ZtMHw9WXbhe3pPBkCQJKC1"));
        assert!(!same_hash(md5, argon));
    }
}
