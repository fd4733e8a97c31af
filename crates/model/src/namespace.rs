//! Who may hold a domain name: the pure rules behind name ownership.
//!
//! - **Registrable domain.** Ownership is per registrable domain, the Public Suffix
//!   List's eTLD+1 (`shop.example.co.uk` → `example.co.uk`), from the list compiled
//!   into the `psl` crate. A name that is itself a public suffix (`co.uk`, `com`,
//!   `github.io`) is never a customer's domain. A top-level label the list does not
//!   know (`.test`, `.example`) counts as a suffix by the list's default rule `*`.
//! - **Lookalikes.** A label mixing scripts beyond UTS #39's "moderately restrictive"
//!   level (Latin with Cyrillic `а` in `pаypal`, Latin with Greek) is a lookalike;
//!   [`check_lookalike`] refuses it (the API lets only admins add such names).

use crate::{DomainName, Invalid};
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

/// The registrable domain (eTLD+1) `name` belongs to, or `public_suffix` if `name` is
/// a public suffix itself (nobody may own all of `co.uk`).
pub fn registrable(name: &DomainName) -> Result<DomainName, Invalid> {
    let refuse = || {
        Invalid::new(
            "public_suffix",
            format!(
                "`{}` is a public suffix (Public Suffix List): names are registered below it, \
                 like example.{}",
                name.to_unicode(),
                name.to_unicode()
            ),
        )
    };
    let reg = psl::domain_str(name.as_str()).ok_or_else(refuse)?;
    // The list's registrable part of a valid name is a valid name with ≥ 2 labels.
    DomainName::new(reg).map_err(|_| refuse())
}

/// Refuse a name one of whose labels mixes scripts beyond UTS #39's "moderately
/// restrictive" level (rule `mixed_script`). ASCII labels, single-script labels,
/// Latin with Han/Kana/Hangul (highly restrictive) and Latin with one other
/// recommended script except Cyrillic and Greek (moderately restrictive) pass.
pub fn check_lookalike(name: &DomainName) -> Result<(), Invalid> {
    let unicode = name.to_unicode();
    for label in unicode.split('.') {
        if label.is_ascii() {
            continue;
        }
        let level = label.detect_restriction_level();
        if level > RestrictionLevel::ModeratelyRestrictive {
            return Err(Invalid::new(
                "mixed_script",
                format!(
                    "the label `{label}` mixes scripts (UTS #39 allows Latin only with Han, \
                     Kana, Hangul or one other script that is not Cyrillic or Greek), so it can \
                     pass for another name; ask an administrator to add it"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::new(s).unwrap()
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(
            registrable(&d("www.example.co.uk")).unwrap(),
            d("example.co.uk")
        );
        assert_eq!(
            registrable(&d("example.co.uk")).unwrap(),
            d("example.co.uk")
        );
        assert_eq!(
            registrable(&d("a.b.example.com")).unwrap(),
            d("example.com")
        );
        assert_eq!(
            registrable(&d("x.hosting.test")).unwrap(),
            d("hosting.test")
        );
        assert_eq!(registrable(&d("me.github.io")).unwrap(), d("me.github.io"));
        assert_eq!(
            registrable(&d("www.bücher.example")).unwrap(),
            d("bücher.example")
        );
        for s in ["co.uk", "github.io", "com.au"] {
            assert_eq!(registrable(&d(s)).unwrap_err().rule, "public_suffix", "{s}");
        }
    }

    #[test]
    fn lookalikes() {
        for ok in [
            "example.com",
            "bücher.example",
            "пример.рф",
            "例え.jp",
            "abc日本.jp",
            "xn--d1acpjx3f.xn--p1ai",
        ] {
            assert!(check_lookalike(&d(ok)).is_ok(), "{ok}");
        }
        // Cyrillic а (U+0430) in a Latin label; Greek ο in a Latin label.
        for bad in [
            "p\u{430}ypal.com",
            "g\u{3bf}ogle.com",
            "www.p\u{430}ypal.com",
        ] {
            assert_eq!(
                check_lookalike(&d(bad)).unwrap_err().rule,
                "mixed_script",
                "{bad}"
            );
        }
    }
}
