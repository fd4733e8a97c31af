//! Mailbox names: modified UTF-7 (RFC 3501 §5.1.3) on the wire and on disk, the
//! confinement rules, and the Maildir++ directory of a name.
//!
//! A name from a client is first decoded to Unicode (modified UTF-7, or UTF-8 once
//! `UTF8=ACCEPT` is enabled), then checked component by component (separator `.`):
//! no empty component (so no `..`), no `/`, no control characters, no wildcard.
//! Only then is the directory name derived, always by our own encoder, as
//! `.<mUTF-7 name>` beneath the user's own `Maildir`: a decoded `&AC4ALg-` (`..`) or
//! `&AC8-` (`/`) is refused before any path is built.

use std::path::{Path, PathBuf};

use base64::Engine;

/// The hierarchy separator (Maildir++ uses `.`).
pub const SEP: char = '.';

/// Most bytes in a mailbox name (Unicode form).
pub const MAX_NAME: usize = 255;

/// The special-use folders created on first login, with their RFC 6154 attribute.
pub const SPECIAL: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not valid modified UTF-7.
    #[error("mailbox name is not valid modified UTF-7")]
    Encoding,
    /// Breaks the naming rules (empty component, `/`, control character, wildcard).
    #[error("mailbox name not allowed")]
    Forbidden,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(false),
    )
}

/// Modified UTF-7 encoding of `s`.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&b64().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decode modified UTF-7 (strict: no raw 8-bit, no `&` left open).
pub fn decode(s: &str) -> Result<String, NameError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        let plain = &rest[..i];
        if !plain.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(NameError::Encoding);
        }
        out.push_str(plain);
        let after = &rest[i + 1..];
        let end = after.find('-').ok_or(NameError::Encoding)?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = b64().decode(chunk).map_err(|_| NameError::Encoding)?;
            if bytes.len() % 2 != 0 {
                return Err(NameError::Encoding);
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).map_err(|_| NameError::Encoding)?;
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                // printable ASCII must not be base64-encoded (RFC 3501)
                return Err(NameError::Encoding);
            }
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    if !rest.chars().all(|c| (' '..='~').contains(&c)) {
        return Err(NameError::Encoding);
    }
    out.push_str(rest);
    Ok(out)
}

/// Check a Unicode mailbox name (not INBOX); `wildcards` allows `%`/`*` (never for
/// names that create or open a mailbox).
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(NameError::Forbidden);
    }
    for comp in name.split(SEP) {
        if comp.is_empty()
            || comp
                .chars()
                .any(|c| c == '/' || c == '\\' || c == '%' || c == '*' || c.is_control())
        {
            return Err(NameError::Forbidden);
        }
    }
    Ok(())
}

/// Whether `name` is INBOX (case-insensitive).
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// The Maildir directory of mailbox `name` in the user's `maildir` (checked).
pub fn folder_dir(maildir: &Path, name: &str) -> Result<PathBuf, NameError> {
    if is_inbox(name) {
        return Ok(maildir.to_path_buf());
    }
    check(name)?;
    Ok(maildir.join(format!(".{}", encode(name))))
}

/// The mailbox name of a Maildir++ directory entry (`.Name`), if it is one.
pub fn from_dir_entry(entry: &str) -> Option<String> {
    let enc = entry.strip_prefix('.')?;
    let name = decode(enc).ok()?;
    check(&name).ok()?;
    (encode(&name) == enc).then_some(name)
}

/// IMAP LIST pattern match (`*` matches anything, `%` anything but the separator),
/// case-sensitive except for INBOX.
pub fn matches(pattern: &str, name: &str) -> bool {
    // dynamic programming over (pattern, name) positions: linear in each, so a
    // pattern of many wildcards cannot make LIST exponential
    fn go(p: &[char], n: &[char]) -> bool {
        // m[j]: pattern prefix matches name prefix of length j
        let mut m = vec![false; n.len() + 1];
        m[0] = true;
        for &pc in p {
            let mut next = vec![false; n.len() + 1];
            match pc {
                '*' | '%' => {
                    let mut reach = false;
                    for j in 0..=n.len() {
                        if m[j] {
                            reach = true;
                        }
                        next[j] = reach;
                        // `%` does not cross the separator
                        if pc == '%' && j < n.len() && n[j] == SEP {
                            reach = false;
                        }
                    }
                }
                c => {
                    for j in 0..n.len() {
                        next[j + 1] = m[j] && n[j] == c;
                    }
                }
            }
            m = next;
        }
        m[n.len()]
    }
    let (p, n) = if is_inbox(name) {
        (pattern.to_ascii_uppercase(), "INBOX".to_string())
    } else {
        (pattern.to_string(), name.to_string())
    };
    let p: Vec<char> = p.chars().collect();
    let n: Vec<char> = n.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_round_trip_and_rfc_example() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(decode("A&-B").unwrap(), "A&B");
        assert_eq!(encode("A&B"), "A&-B");
        for s in ["Entwürfe", "Отправленные", "a&b", "x😀y"] {
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
        assert!(decode("&Jjo").is_err());
        assert!(decode("&AGE-").is_err(), "encoded printable ASCII");
    }

    #[test]
    fn confinement() {
        let md = Path::new("/m/Maildir");
        assert_eq!(folder_dir(md, "inbox").unwrap(), md);
        assert_eq!(folder_dir(md, "Sent").unwrap(), md.join(".Sent"));
        assert_eq!(folder_dir(md, "A.B").unwrap(), md.join(".A.B"));
        for bad in [
            "..", ".", "a..b", "/etc", "a/b", "%", "*", "a.", ".a", "", "x\u{7}",
        ] {
            assert!(folder_dir(md, bad).is_err(), "{bad:?}");
        }
        // modified UTF-7 tricks decode first, then fail the same checks
        for enc in ["&AC4ALg-", "&AC8-etc", "a&AC8-b"] {
            if let Ok(name) = decode(enc) {
                assert!(folder_dir(md, &name).is_err(), "{enc} -> {name:?}");
            }
        }
        assert_eq!(from_dir_entry(".Sent").as_deref(), Some("Sent"));
        assert_eq!(from_dir_entry(".."), None);
        assert_eq!(from_dir_entry("cur"), None);
    }

    #[test]
    fn list_patterns() {
        assert!(matches("*", "A.B"));
        assert!(matches("%", "A"));
        assert!(!matches("%", "A.B"));
        assert!(matches("A.%", "A.B"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("Se", "Sent"));
        assert!(matches("%.B", "A.B"));
        assert!(!matches("%B", "A.B"));
        assert!(matches("*B", "A.B"));
        let many = "*%".repeat(200);
        assert!(!matches(&format!("{many}x"), &"a.".repeat(100)));
    }
}
