//! Property tests of the validated newtypes: every generated valid value is accepted
//! and normalised, every generated invalid value is rejected with the rule that names
//! its defect, and no input at all makes a constructor panic.

use model::dns::{check_coexistence, RecordData, RecordName, Target};
use model::{
    CountryCode, DbIdent, DomainName, EmailAddress, FtpUsername, LocalPart, RelPath, Slug,
};
use proptest::prelude::*;
use proptest::sample::select;
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------
// Strategies

/// One LDH label of 1–63 characters: letters, digits and inner hyphens, never with
/// `--` in positions 3 and 4 (reserved for IDNA).
fn ldh_label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?".prop_filter("hyphens in positions 3-4 are reserved", |l| {
        l.get(2..4) != Some("--")
    })
}

/// A top-level label: LDH and not all digits.
fn tld_label() -> impl Strategy<Value = String> {
    ldh_label().prop_filter("numeric TLD", |l| !l.bytes().all(|b| b.is_ascii_digit()))
}

/// Labels of a valid name: 1–5 labels plus a TLD, at most 253 octets joined.
fn valid_labels() -> impl Strategy<Value = Vec<String>> {
    (prop::collection::vec(ldh_label(), 1..5), tld_label())
        .prop_map(|(mut labels, tld)| {
            labels.push(tld);
            labels
        })
        .prop_filter("name longer than 253", |l| l.join(".").len() <= 253)
}

/// Upper-case the ASCII letters of `s` where `mask` says so.
fn mix_case(s: &str, mask: &[bool]) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask.get(i % mask.len().max(1)).copied().unwrap_or(false) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Strings that stress the parsers: dots, hyphens, underscores, `xn--`, Unicode,
/// joiners, NULs, ideographic full stops, and arbitrary strings.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._\\- @*/\\\\'\"`;üßİı日本é\u{200d}\u{200c}\u{0}\u{3002}\u{ff0e}\u{fe0f}]{0,80}",
        "(xn--[a-z0-9-]{0,20}\\.){1,3}[a-z]{2,6}\\.?",
        "([a-z0-9*_-]{0,70}\\.){0,6}[a-z0-9-]{0,70}\\.?",
        "([a-zA-Z0-9à-ÿа-яА-Я一-龥ぁ-んα-ωΑ-Ω\u{0600}-\u{06ff}\u{0900}-\u{097f}\u{0300}-\u{036f}-]{1,12}\\.){1,3}(com|xn--p1ai|рф|[a-z]{2})",
    ]
}

// ---------------------------------------------------------------------------
// DomainName

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn domain_valid_ldh_is_accepted_normalised_and_idempotent(
        labels in valid_labels(),
        mask in prop::collection::vec(any::<bool>(), 1..16),
        trailing_dot in any::<bool>(),
    ) {
        let canonical = labels.join(".");
        let mut input = mix_case(&canonical, &mask);
        if trailing_dot {
            input.push('.');
        }
        let d = DomainName::new(&input).map_err(|e| TestCaseError::fail(format!("{input:?} rejected: {} ({})", e.rule, e.message)))?;
        prop_assert_eq!(d.as_str(), canonical.as_str());
        prop_assert_eq!(DomainName::new(d.as_str()), Ok(d.clone()));
        prop_assert_eq!(d.labels().count(), labels.len());
        let json = serde_json::to_string(&d).unwrap();
        prop_assert_eq!(&json, &format!("\"{canonical}\""));
        let back: DomainName = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn domain_label_over_63_is_rejected(
        mut labels in prop::collection::vec(ldh_label(), 0..2),
        long in "[a-z]{64,120}",
        at in any::<prop::sample::Index>(),
    ) {
        labels.push("com".into());
        let i = at.index(labels.len());
        labels.insert(i, long);
        let name = labels.join(".");
        prop_assume!(name.len() <= 253);
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "label_too_long");
    }

    #[test]
    fn domain_over_253_is_rejected(labels in prop::collection::vec("[a-z0-9]{50,63}", 5..12)) {
        let name = format!("{}.com", labels.join("."));
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "name_too_long");
    }

    #[test]
    fn domain_empty_label_is_rejected(labels in valid_labels(), at in any::<prop::sample::Index>()) {
        // An empty label anywhere but last (a single trailing dot is the root, allowed).
        let mut labels = labels;
        let i = at.index(labels.len());
        labels.insert(i, String::new());
        let name = labels.join(".");
        prop_assume!(name.len() <= 253);
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "empty_label");
        // Two trailing dots leave an empty last label.
        let name = format!("{}..", labels[..].iter().filter(|l| !l.is_empty()).cloned().collect::<Vec<_>>().join("."));
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "empty_label");
    }

    #[test]
    fn domain_bad_ascii_character_is_rejected(
        labels in valid_labels(),
        at in any::<prop::sample::Index>(),
        bad in select((0u8..128).filter(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')).collect::<Vec<u8>>()),
    ) {
        let mut labels = labels;
        let i = at.index(labels.len());
        // Inside the label, so neither trimming nor a hyphen rule interferes.
        labels[i] = format!("a{}a", bad as char);
        let name = labels.join(".");
        prop_assume!(name.len() <= 253);
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "bad_character");
    }

    #[test]
    fn domain_hyphen_at_label_edge_is_rejected(
        labels in valid_labels(),
        at in any::<prop::sample::Index>(),
        leading in any::<bool>(),
    ) {
        let mut labels = labels;
        let i = at.index(labels.len());
        let l = &labels[i];
        labels[i] = if leading { format!("-{l}") } else { format!("{l}-") };
        let name = labels.join(".");
        prop_assume!(labels[i].len() <= 63 && name.len() <= 253);
        prop_assert_eq!(DomainName::new(&name).unwrap_err().rule, "hyphen_at_edge");
    }

    #[test]
    fn domain_numeric_tld_and_single_label_are_rejected(label in ldh_label(), digits in "[0-9]{1,10}") {
        prop_assert_eq!(DomainName::new(&label).unwrap_err().rule, "too_few_labels");
        prop_assert_eq!(DomainName::new(&format!("{label}.{digits}")).unwrap_err().rule, "numeric_tld");
    }

    #[test]
    fn domain_unicode_labels_become_a_labels_and_back(
        words in prop::collection::vec(select(UNICODE_WORDS), 1..3),
        // Starting with a letter: a label starting with a digit breaks the Bidi rule
        // (RFC 5893) in a name that also has a right-to-left label.
        ascii in prop::collection::vec("[a-z][a-z0-9]{0,20}", 0..2),
        tld in select(&["com", "example", "de", "рф", "中国"][..]),
    ) {
        let mut input_labels: Vec<&str> = Vec::new();
        let mut want_labels: Vec<String> = Vec::new();
        for (w, lower) in &words {
            input_labels.push(w);
            want_labels.push((*lower).to_owned());
        }
        for a in &ascii {
            input_labels.push(a);
            want_labels.push(a.clone());
        }
        input_labels.push(tld);
        want_labels.push(tld.to_owned());
        let input = input_labels.join(".");
        let d = DomainName::new(&input).map_err(|e| TestCaseError::fail(format!("{input:?} rejected: {} ({})", e.rule, e.message)))?;
        prop_assert!(d.as_str().is_ascii(), "{} is not ASCII", d);
        prop_assert!(d.labels().take(words.len()).all(|l| l.starts_with("xn--")), "{} lacks A-labels", d);
        prop_assert_eq!(d.to_unicode(), want_labels.join("."));
        // The A-label form is accepted back unchanged.
        prop_assert_eq!(DomainName::new(d.as_str()), Ok(d.clone()));
        let back: DomainName = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn domain_never_panics_and_accepts_only_canonical_names(input in nasty_string()) {
        if let Ok(d) = DomainName::new(&input) {
            let s = d.as_str();
            prop_assert!(s.is_ascii() && s.len() <= 253 && !s.ends_with('.'), "{:?} -> {:?}", input, s);
            prop_assert!(!s.bytes().any(|b| b.is_ascii_uppercase()), "{:?} -> {:?}", input, s);
            let labels: Vec<&str> = d.labels().collect();
            prop_assert!(labels.len() >= 2);
            for l in &labels {
                prop_assert!(!l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'), "{:?} -> {:?}", input, s);
                prop_assert!(l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{:?} -> {:?}", input, s);
            }
            prop_assert_eq!(DomainName::new(s), Ok(d.clone()), "not idempotent for {:?}", input);
            // The Unicode form names the same domain.
            let unicode = d.to_unicode();
            prop_assert_eq!(DomainName::new(&unicode), Ok(d.clone()), "U-label form {:?} of {:?} disagrees", unicode, input);
        }
    }
}

/// Real words in several scripts, as typed (some capitalised) and in lowercase.
const UNICODE_WORDS: &[(&str, &str)] = &[
    ("bücher", "bücher"),
    ("Bücher", "bücher"),
    ("münchen", "münchen"),
    ("MÜNCHEN", "münchen"),
    ("straße", "straße"),
    ("café", "café"),
    ("日本", "日本"),
    ("例え", "例え"),
    ("中文", "中文"),
    ("пример", "пример"),
    ("Москва", "москва"),
    ("παράδειγμα", "παράδειγμα"),
    ("한국", "한국"),
    ("ไทย", "ไทย"),
    ("उदाहरण", "उदाहरण"),
    ("مثال", "مثال"),
    ("ελληνικά", "ελληνικά"),
    ("smörgåsbord", "smörgåsbord"),
];

#[test]
fn domain_examples() {
    assert_eq!(
        DomainName::new("bücher.example").unwrap().as_str(),
        "xn--bcher-kva.example"
    );
    assert_eq!(
        DomainName::new("münchen.de").unwrap().as_str(),
        "xn--mnchen-3ya.de"
    );
    assert_eq!(
        DomainName::new("пример.рф").unwrap().as_str(),
        "xn--e1afmkfd.xn--p1ai"
    );
    assert_eq!(DomainName::new("日本.jp").unwrap().to_unicode(), "日本.jp");
    assert_eq!(DomainName::new("").unwrap_err().rule, "empty");
    assert_eq!(DomainName::new(".").unwrap_err().rule, "empty");
    assert_eq!(
        DomainName::new("a\u{0}b.com").unwrap_err().rule,
        "bad_character"
    );
    assert_eq!(
        DomainName::new("a b.com").unwrap_err().rule,
        "bad_character"
    );
    assert!(DomainName::new("Example.COM.").is_ok());
    // An A-label whose U-label starts with a hyphen is as invalid as the U-label is
    // (found by `domain_never_panics_and_accepts_only_canonical_names`).
    assert_eq!(
        DomainName::new("-0-aʤaa0a.aa").unwrap_err().rule,
        "bad_idna"
    );
    assert_eq!(
        DomainName::new("xn---0-aaa0a-bbe.aa").unwrap_err().rule,
        "bad_punycode"
    );
    assert_eq!(
        DomainName::new("xn--abc-.com").unwrap_err().rule,
        "hyphen_at_edge"
    );
    // Exactly 63 and 253 are fine; one more is not.
    let l63 = "a".repeat(63);
    assert!(DomainName::new(&format!("{l63}.com")).is_ok());
    let n253 = format!("{l63}.{l63}.{l63}.{}", "b".repeat(61));
    assert_eq!(n253.len(), 253);
    assert!(DomainName::new(&n253).is_ok());
    assert_eq!(
        DomainName::new(&format!("{n253}b")).unwrap_err().rule,
        "name_too_long"
    );
}

// ---------------------------------------------------------------------------
// LocalPart and EmailAddress

/// `atext` of RFC 5322 (letters, digits and the specials allowed in a dot-atom),
/// less `/`: a mailbox is a Maildir folder named by its local part, so `LocalPart`
/// refuses `/` (checked in `local_part_slash_is_rejected`).
const ATEXT: &str = "[a-zA-Z0-9!#$%&'*+=?^_`{|}~-]";

fn dot_atom() -> impl Strategy<Value = String> {
    prop::collection::vec(
        proptest::string::string_regex(&format!("{ATEXT}{{1,20}}")).expect("valid regex"),
        1..5,
    )
    .prop_map(|atoms| atoms.join("."))
    .prop_filter("longer than 64", |s| s.len() <= 64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn local_part_dot_atoms_are_accepted_lowercased(s in dot_atom()) {
        let lp = LocalPart::new(&s).map_err(|e| TestCaseError::fail(format!("{s:?} rejected: {}", e.rule)))?;
        prop_assert_eq!(lp.as_str(), s.to_ascii_lowercase());
        prop_assert_eq!(LocalPart::new(lp.as_str()), Ok(lp.clone()));
        let email = EmailAddress::new(&format!("{s}@Example.COM")).unwrap();
        prop_assert_eq!(email.local_part(), lp.as_str());
        prop_assert_eq!(email.domain(), "example.com");
        let back: EmailAddress = serde_json::from_str(&serde_json::to_string(&email).unwrap()).unwrap();
        prop_assert_eq!(back, email);
    }

    #[test]
    fn local_part_slash_is_rejected(s in dot_atom(), at in any::<prop::sample::Index>()) {
        prop_assume!(s.len() < 64); // room for the slash within 64 octets
        let mut bad = s.clone();
        bad.insert(at.index(s.len() + 1), '/');
        let e = LocalPart::new(&bad).expect_err("a / in a local part");
        prop_assert_eq!(e.rule, "bad_character");
        let address = format!("{bad}@example.com");
        prop_assert!(EmailAddress::new(&address).is_err());
    }

    #[test]
    fn local_part_bad_dots_are_rejected(s in dot_atom(), kind in 0..3u8, at in any::<prop::sample::Index>()) {
        let bad = match kind {
            0 => format!(".{s}"),
            1 => format!("{s}."),
            _ => {
                let i = at.index(s.len() + 1);
                format!("{}..{}", &s[..i], &s[i..])
            }
        };
        prop_assume!(bad.len() <= 64);
        prop_assert_eq!(LocalPart::new(&bad).unwrap_err().rule, "bad_dots");
    }

    #[test]
    fn local_part_specials_and_non_ascii_are_rejected(
        a in "[a-z]{1,20}",
        b in "[a-z]{1,20}",
        special in prop_oneof![
            select(&[" ", "\"", "(", ")", "@", "\\", ",", ":", ";", "<", ">", "[", "]", "\t", "\u{0}", "\u{7f}"][..]).prop_map(str::to_owned),
            any::<char>().prop_filter("ASCII", |c| !c.is_ascii()).prop_map(String::from),
        ],
    ) {
        let s = format!("{a}{special}{b}");
        prop_assume!(s.len() <= 64);
        prop_assert_eq!(LocalPart::new(&s).unwrap_err().rule, "bad_character");
    }

    #[test]
    fn local_part_too_long_is_rejected(s in "[a-z]{65,200}") {
        prop_assert_eq!(LocalPart::new(&s).unwrap_err().rule, "local_part_too_long");
    }

    #[test]
    fn local_part_and_email_never_panic(input in nasty_string()) {
        if let Ok(lp) = LocalPart::new(&input) {
            let s = lp.as_str();
            prop_assert!(!s.is_empty() && s.len() <= 64 && s.is_ascii() && !s.contains("..") && !s.starts_with('.') && !s.ends_with('.'));
            prop_assert!(!s.bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace() || b"\"(),:;<>@[\\]".contains(&b)));
        }
        if let Ok(e) = EmailAddress::new(&input) {
            prop_assert_eq!(EmailAddress::new(e.as_str()), Ok(e.clone()));
        }
    }
}

// ---------------------------------------------------------------------------
// DbIdent

const RESERVED: &[&str] = &[
    "root",
    "admin",
    "postgres",
    "template0",
    "template1",
    "public",
    "information_schema",
    "performance_schema",
    "sys",
    "mysql",
    "mariadb",
    "test",
    "replication",
    "hostplane",
    "all",
    "user",
    "current_user",
    "session_user",
    "none",
    "default",
];

fn is_reserved(s: &str) -> bool {
    RESERVED.contains(&s) || s.starts_with("pg_") || s.starts_with("mysql")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn db_ident_valid_unless_reserved(s in "[a-z][a-z0-9_]{0,31}") {
        match DbIdent::new(&s) {
            Ok(d) => {
                prop_assert!(!is_reserved(&s));
                prop_assert_eq!(d.as_str(), s.as_str());
            }
            Err(e) => {
                prop_assert!(is_reserved(&s), "{:?} rejected: {}", s, e.rule);
                prop_assert_eq!(e.rule, "reserved");
            }
        }
    }

    #[test]
    fn db_ident_reserved_prefixes_are_rejected(rest in "[a-z0-9_]{0,26}", prefix in select(&["pg_", "mysql"][..])) {
        prop_assert_eq!(DbIdent::new(&format!("{prefix}{rest}")).unwrap_err().rule, "reserved");
    }

    #[test]
    fn db_ident_with_foreign_char_is_rejected(
        a in "[a-z][a-z0-9_]{0,10}",
        b in "[a-z0-9_]{0,10}",
        c in any::<char>().prop_filter("allowed char", |c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')),
    ) {
        let s = format!("{a}{c}{b}");
        prop_assume!(s.len() <= 32);
        prop_assert_eq!(DbIdent::new(&s).unwrap_err().rule, "bad_character");
        // And at the front.
        let front = format!("{c}{a}");
        prop_assert!(DbIdent::new(&front).is_err());
    }

    #[test]
    fn db_ident_over_32_is_rejected(s in "[a-z][a-z0-9_]{32,80}") {
        prop_assert_eq!(DbIdent::new(&s).unwrap_err().rule, "too_long");
    }

    #[test]
    fn db_ident_never_panics_and_only_accepts_safe_identifiers(input in nasty_string()) {
        if let Ok(d) = DbIdent::new(&input) {
            let s = d.as_str();
            prop_assert!(!s.is_empty() && s.len() <= 32 && !is_reserved(s));
            prop_assert!(s.as_bytes()[0].is_ascii_lowercase());
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}

#[test]
fn db_ident_injection_strings_are_rejected() {
    for s in [
        "x; DROP DATABASE y",
        "a`b",
        "a'b",
        "a\"b",
        "a b",
        "a-b",
        "a;",
        "a\u{0}b",
        "ä",
        "aé",
        "a\nb",
        "a--b",
        "a/*b*/",
        "a)b",
    ] {
        assert!(DbIdent::new(s).is_err(), "{s:?} accepted");
    }
    assert_eq!(DbIdent::new("").unwrap_err().rule, "empty");
    assert_eq!(
        DbIdent::new("_a").unwrap_err().rule,
        "must_start_with_letter"
    );
    assert_eq!(
        DbIdent::new("1a").unwrap_err().rule,
        "must_start_with_letter"
    );
    assert!(DbIdent::new(&"a".repeat(32)).is_ok());
}

// ---------------------------------------------------------------------------
// Slug, FtpUsername, RelPath, CountryCode

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn slug_valid_is_accepted(first in "[a-z]", parts in prop::collection::vec("[a-z0-9]{1,10}", 0..6)) {
        let s = if parts.is_empty() { first } else { format!("{first}{}", parts.join("-")) };
        prop_assume!(s.len() <= 63);
        prop_assert_eq!(Slug::new(&s).map(|x| x.as_str().to_owned()), Ok(s));
    }

    #[test]
    fn slug_never_panics_and_only_accepts_slugs(input in nasty_string()) {
        if let Ok(s) = Slug::new(&input) {
            let s = s.as_str();
            prop_assert!(!s.is_empty() && s.len() <= 63 && s.as_bytes()[0].is_ascii_lowercase());
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            prop_assert!(!s.ends_with('-') && !s.contains("--"));
            // A slug is usable as a DNS label.
            let host = format!("{s}.example");
            prop_assert!(DomainName::new(&host).is_ok());
        }
    }

    #[test]
    fn ftp_username_valid_is_accepted(s in "[a-z][a-z0-9_-]{0,20}([.][a-z0-9_-]{1,4}){0,2}") {
        prop_assume!(s.len() >= 2 && s.len() <= 32);
        prop_assert_eq!(FtpUsername::new(&s).map(|x| x.as_str().to_owned()), Ok(s));
    }

    #[test]
    fn ftp_username_never_panics_and_only_accepts_logins(input in nasty_string()) {
        if let Ok(u) = FtpUsername::new(&input) {
            let s = u.as_str();
            prop_assert!((2..=32).contains(&s.len()) && s.as_bytes()[0].is_ascii_lowercase());
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
            prop_assert!(!s.ends_with('.') && !s.contains(".."));
        }
    }

    #[test]
    fn rel_path_valid_is_accepted(segs in prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,15}", 0..6), lead in any::<bool>(), trail in any::<bool>()) {
        let canonical = segs.join("/");
        let mut input = canonical.clone();
        if lead { input.insert(0, '/'); }
        if trail { input.push('/'); }
        prop_assert_eq!(RelPath::new(&input).map(|p| p.as_str().to_owned()), Ok(canonical));
    }

    #[test]
    fn rel_path_traversal_is_rejected(
        before in prop::collection::vec("[a-z0-9]{1,8}", 0..3),
        after in prop::collection::vec("[a-z0-9]{1,8}", 0..3),
        bad in prop_oneof![Just("..".to_owned()), Just(".".to_owned()), "\\.[a-z0-9._-]{0,8}"],
    ) {
        let mut segs = before;
        segs.push(bad);
        segs.extend(after);
        prop_assert_eq!(RelPath::new(&segs.join("/")).unwrap_err().rule, "dot_segment");
    }

    #[test]
    fn rel_path_backslash_nul_and_foreign_chars_are_rejected(
        a in "[a-z0-9]{0,8}",
        b in "[a-z0-9]{0,8}",
        c in any::<char>().prop_filter("allowed", |c| !(c.is_ascii_alphanumeric() || "._-/".contains(*c))),
    ) {
        prop_assert_eq!(RelPath::new(&format!("x{a}{c}{b}")).unwrap_err().rule, "bad_character");
    }

    #[test]
    fn rel_path_never_panics_and_never_escapes(input in prop_oneof![nasty_string(), "[a-z./\\\\\u{0}]{0,40}".boxed()]) {
        if let Ok(p) = RelPath::new(&input) {
            let s = p.as_str();
            prop_assert!(s.len() <= 255 && !s.starts_with('/') && !s.ends_with('/'));
            prop_assert!(!s.contains('\\') && !s.contains('\0'));
            if !s.is_empty() {
                for seg in s.split('/') {
                    prop_assert!(!seg.is_empty() && !seg.starts_with('.'), "{:?} -> {:?}", input, s);
                    prop_assert!(seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
                }
            }
            prop_assert_eq!(RelPath::new(s), Ok(p.clone()));
        }
    }

    #[test]
    fn country_code_accepts_exactly_the_known_codes(input in prop_oneof!["[a-zA-Z]{2}", nasty_string()]) {
        match CountryCode::new(&input) {
            Ok(c) => {
                let s = c.as_str();
                prop_assert!(s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()));
                prop_assert_eq!(s, input.trim().to_ascii_uppercase());
                let json = serde_json::to_string(&c).unwrap();
                prop_assert_eq!(serde_json::from_str::<CountryCode>(&json).unwrap(), c);
            }
            Err(e) => prop_assert_eq!(e.rule, "unknown_country"),
        }
    }
}

#[test]
fn small_types_examples() {
    assert_eq!(
        Slug::new("Web-eu").unwrap_err().rule,
        "must_start_with_letter"
    );
    assert_eq!(Slug::new("web--eu").unwrap_err().rule, "bad_hyphens");
    assert_eq!(Slug::new("web-").unwrap_err().rule, "bad_hyphens");
    assert_eq!(Slug::new("web_eu").unwrap_err().rule, "bad_character");
    assert_eq!(Slug::new(&"a".repeat(64)).unwrap_err().rule, "too_long");
    assert_eq!(FtpUsername::new("a").unwrap_err().rule, "bad_length");
    assert_eq!(FtpUsername::new("ab.").unwrap_err().rule, "bad_dots");
    assert_eq!(FtpUsername::new("a..b").unwrap_err().rule, "bad_dots");
    assert_eq!(
        FtpUsername::new("1ab").unwrap_err().rule,
        "must_start_with_letter"
    );
    assert_eq!(FtpUsername::new("ab c").unwrap_err().rule, "bad_character");
    assert_eq!(RelPath::new("").unwrap(), RelPath::root());
    assert_eq!(RelPath::new("/").unwrap(), RelPath::root());
    assert_eq!(RelPath::new("..").unwrap_err().rule, "dot_segment");
    assert_eq!(RelPath::new("a/..").unwrap_err().rule, "dot_segment");
    assert_eq!(RelPath::new("a\\..\\b").unwrap_err().rule, "bad_character");
    assert_eq!(RelPath::new("a\0b").unwrap_err().rule, "bad_character");
    assert_eq!(RelPath::new(&"a".repeat(256)).unwrap_err().rule, "too_long");
    assert_eq!(CountryCode::new(" de ").unwrap().as_str(), "DE");
    assert_eq!(CountryCode::new("UK").unwrap_err().rule, "unknown_country");
    assert!(serde_json::from_str::<CountryCode>("\"ZZ\"").is_err());
}

// ---------------------------------------------------------------------------
// DNS: RecordName, Target, RecordData, coexistence

/// Arbitrary JSON values, shallow but with every JSON type.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u16>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_string().prop_map(Value::String),
        select(
            &[
                "1.2.3.4",
                "::1",
                "0.0.0.0",
                "ff02::1",
                "255.255.255.255",
                "mx.example.com",
                ".",
                "issue",
                "x"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                select(
                    &[
                        "type",
                        "address",
                        "target",
                        "preference",
                        "exchange",
                        "text",
                        "priority",
                        "weight",
                        "port",
                        "flags",
                        "tag",
                        "value",
                        "x"
                    ][..]
                )
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON objects shaped like record data: a real type tag and plausible fields.
fn record_json() -> impl Strategy<Value = serde_json::Value> {
    (
        select(
            &[
                "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "a", "SOA", "",
            ][..],
        ),
        prop::collection::btree_map(
            select(
                &[
                    "address",
                    "target",
                    "preference",
                    "exchange",
                    "text",
                    "priority",
                    "weight",
                    "port",
                    "flags",
                    "tag",
                    "value",
                ][..],
            ),
            json_value(),
            0..5,
        ),
    )
        .prop_map(|(t, fields)| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), t.into());
            for (k, v) in fields {
                m.insert(k.into(), v);
            }
            serde_json::Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn record_name_and_target_never_panic(input in nasty_string(), zone in valid_labels()) {
        let zone = DomainName::new(&zone.join(".")).unwrap();
        if let Ok(n) = RecordName::new(&input) {
            prop_assert_eq!(RecordName::new(n.as_str()), Ok(n.clone()), "not idempotent for {:?}", input);
            prop_assert!(n.as_str().is_ascii());
            let _ = n.check_in_zone(&zone);
            let _ = n.is_below(&RecordName::apex());
            let json = serde_json::to_string(&n).unwrap();
            prop_assert_eq!(serde_json::from_str::<RecordName>(&json).unwrap(), n);
        }
        if let Ok(t) = Target::new(&input) {
            prop_assert_eq!(Target::new(t.as_str()), Ok(t.clone()), "not idempotent for {:?}", input);
            prop_assert!(t.is_root() || (t.as_str().contains('.') && t.as_str().len() <= 253));
        }
        let _ = serde_json::from_str::<RecordName>(&serde_json::to_string(&input).unwrap());
        let _ = serde_json::from_str::<Target>(&serde_json::to_string(&input).unwrap());
    }

    #[test]
    fn record_data_from_arbitrary_json_never_panics(v in prop_oneof![record_json(), json_value()], name in nasty_string()) {
        if let Ok(d) = serde_json::from_value::<RecordData>(v) {
            let name = RecordName::new(&name).unwrap_or_else(|_| RecordName::apex());
            let _ = d.validate(&name);
            let _ = d.rtype();
            // Whatever was accepted serialises back to the same value.
            let again: RecordData = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
            prop_assert_eq!(again, d);
        }
    }
}

/// Record names drawn from a small pool so collisions and nesting happen often.
fn pool_name() -> impl Strategy<Value = RecordName> {
    select(
        &[
            "@",
            "www",
            "a",
            "b.a",
            "c.b.a",
            "*.a",
            "sub",
            "x.sub",
            "*.sub",
            "y.x.sub",
            "_sip._tcp",
            "mail",
        ][..],
    )
    .prop_map(|s| RecordName::new(s).expect("valid pool name"))
}

fn pool_data() -> impl Strategy<Value = RecordData> {
    let target = select(&["t1.example.net", "t2.example.net", "ns1.other.org", "."][..])
        .prop_map(|s| Target::new(s).expect("valid pool target"));
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| RecordData::A {
            address: Ipv4Addr::from(b)
        }),
        any::<u128>().prop_map(|b| RecordData::Aaaa {
            address: Ipv6Addr::from(b)
        }),
        target
            .clone()
            .prop_map(|target| RecordData::Cname { target }),
        (0..3u16, target.clone()).prop_map(|(preference, exchange)| RecordData::Mx {
            preference,
            exchange
        }),
        "[ -~]{0,20}".prop_map(|text| RecordData::Txt { text }),
        (any::<u16>(), any::<u16>(), any::<u16>(), target.clone()).prop_map(
            |(priority, weight, port, target)| RecordData::Srv {
                priority,
                weight,
                port,
                target
            }
        ),
        (select(&[0u8, 128, 1][..]), "[a-z]{1,5}", "[ -~]{0,20}")
            .prop_map(|(flags, tag, value)| RecordData::Caa { flags, tag, value }),
        target.prop_map(|target| RecordData::Ns { target }),
    ]
}

fn is_cname(d: &RecordData) -> bool {
    matches!(d, RecordData::Cname { .. })
}
fn is_ns(d: &RecordData) -> bool {
    matches!(d, RecordData::Ns { .. })
}
fn is_glue(d: &RecordData) -> bool {
    matches!(d, RecordData::A { .. } | RecordData::Aaaa { .. })
}

/// The zone invariants `check_coexistence` exists to keep.
fn zone_invariant_violation(zone: &[(RecordName, RecordData)]) -> Option<String> {
    for (n, d) in zone {
        let at_name = zone.iter().filter(|(m, _)| m == n).count();
        if is_cname(d) && at_name > 1 {
            return Some(format!(
                "CNAME at `{n}` shares its name with {} other records",
                at_name - 1
            ));
        }
        if is_ns(d) {
            if let Some((_, other)) = zone.iter().find(|(m, o)| m == n && !is_ns(o)) {
                return Some(format!("delegated `{n}` also holds {}", other.rtype()));
            }
            if let Some((m, other)) = zone.iter().find(|(m, o)| m.is_below(n) && !is_glue(o)) {
                return Some(format!(
                    "`{m}` {} lies below the delegation `{n}`",
                    other.rtype()
                ));
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn coexistence_keeps_cname_alone_and_delegations_clean(
        adds in prop::collection::vec((pool_name(), pool_data()), 1..40),
        check_data in any::<bool>(),
    ) {
        let mut zone: Vec<(RecordName, RecordData)> = Vec::new();
        for (name, data) in adds {
            if check_data && data.validate(&name).is_err() {
                continue;
            }
            let verdict = check_coexistence(&zone, &name, &data);
            let mut candidate = zone.clone();
            candidate.push((name.clone(), data.clone()));
            let would_break = zone_invariant_violation(&candidate);
            match (&verdict, &would_break) {
                (Ok(()), Some(why)) => prop_assert!(false, "accepted {} at `{}` although {}", data.rtype(), name, why),
                (Err(e), None) => prop_assert!(false, "refused {} at `{}` ({}) although the zone would stay consistent", data.rtype(), name, e.rule),
                _ => {}
            }
            if verdict.is_ok() {
                zone = candidate;
            }
        }
        prop_assert_eq!(zone_invariant_violation(&zone), None);
    }
}

#[test]
fn coexistence_examples() {
    let n = |s: &str| RecordName::new(s).unwrap();
    let cname = RecordData::Cname {
        target: Target::new("t.example.net").unwrap(),
    };
    let txt = RecordData::Txt {
        text: "v=spf1 -all".into(),
    };
    let ns = RecordData::Ns {
        target: Target::new("ns1.other.org").unwrap(),
    };
    let glue = RecordData::A {
        address: Ipv4Addr::new(192, 0, 2, 1),
    };
    assert_eq!(
        check_coexistence(&[(n("www"), cname.clone())], &n("www"), &cname)
            .unwrap_err()
            .rule,
        "cname_conflict"
    );
    assert_eq!(
        check_coexistence(&[(n("www"), txt.clone())], &n("www"), &cname)
            .unwrap_err()
            .rule,
        "cname_conflict"
    );
    assert_eq!(
        check_coexistence(&[(n("sub"), ns.clone())], &n("x.sub"), &cname)
            .unwrap_err()
            .rule,
        "below_delegation"
    );
    assert_eq!(
        check_coexistence(&[(n("sub"), ns.clone())], &n("x.sub"), &ns)
            .unwrap_err()
            .rule,
        "below_delegation"
    );
    assert!(check_coexistence(&[(n("sub"), ns.clone())], &n("ns1.sub"), &glue).is_ok());
    assert!(check_coexistence(&[(n("sub"), ns.clone())], &n("sub"), &ns).is_ok());
    assert_eq!(
        check_coexistence(&[(n("x.sub"), txt)], &n("sub"), &ns)
            .unwrap_err()
            .rule,
        "delegation_conflict"
    );
    assert!(check_coexistence(&[(n("x.sub"), glue)], &n("sub"), &ns).is_ok());
    assert!(check_coexistence(&[(n("www"), cname.clone())], &n("a.www"), &cname).is_ok());
    assert_eq!(
        RecordName::new("www.example.com.").unwrap_err().rule,
        "absolute_name"
    );
    assert_eq!(
        Target::new("localhost").unwrap_err().rule,
        "not_fully_qualified"
    );
    assert_eq!(Target::new("").unwrap_err().rule, "empty");
    assert!(Target::new(".").unwrap().is_root());
}
