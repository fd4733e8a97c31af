//! Free text (display names, descriptions, token names …): one rule for every field
//! the API accepts. Refused: C0 controls (a newline only where the field allows
//! several lines), DEL, C1 controls, and the Unicode bidirectional formatting
//! characters (embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, the
//! marks U+200E, U+200F and U+061C), which make text read differently from what it
//! is (CVE-2021-42574 "Trojan Source").

use crate::Invalid;

/// Whether `c` is refused in free text (`multiline`: a `\n` is allowed).
pub fn forbidden_in_text(c: char, multiline: bool) -> bool {
    if c == '\n' {
        return !multiline;
    }
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

/// Validated free text: at most a given number of characters, none of them
/// [`forbidden_in_text`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FreeText(String);

impl FreeText {
    /// One line of at most `max_chars` characters.
    pub fn line(value: &str, max_chars: usize) -> Result<Self, Invalid> {
        Self::check(value, max_chars, false)
    }

    /// Text of at most `max_chars` characters that may span lines.
    pub fn multiline(value: &str, max_chars: usize) -> Result<Self, Invalid> {
        Self::check(value, max_chars, true)
    }

    fn check(value: &str, max_chars: usize, multiline: bool) -> Result<Self, Invalid> {
        if value.chars().count() > max_chars {
            return Err(Invalid::new(
                "too_long",
                format!("at most {max_chars} characters"),
            ));
        }
        if let Some(c) = value.chars().find(|c| forbidden_in_text(*c, multiline)) {
            let what = if c.is_control() {
                "control characters"
            } else {
                "bidirectional formatting characters (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C)"
            };
            return Err(Invalid::new(
                "bad_character",
                format!("cannot contain {what}; found U+{:04X}", u32::from(c)),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_controls_and_bidi_controls() {
        assert!(FreeText::line("Café Ünïcode 名前 — ok", 200).is_ok());
        for bad in [
            "a\u{0}b",
            "a\rb",
            "a\tb",
            "a\u{7f}",
            "a\u{85}",
            "a\u{9b}b",
            "evil\u{202E}gnp.exe",
            "\u{2066}x\u{2069}",
            "\u{200F}",
            "\u{061C}",
            "line\nbreak",
        ] {
            let e = FreeText::line(bad, 200).unwrap_err();
            assert_eq!(e.rule, "bad_character", "{bad:?}");
        }
        assert!(FreeText::multiline("two\nlines", 200).is_ok());
        assert!(FreeText::multiline("two\r\nlines", 200).is_err());
        assert_eq!(FreeText::line("abc", 2).unwrap_err().rule, "too_long");
    }

    proptest! {
        #[test]
        fn accepted_text_has_no_forbidden_character(s in "\\PC*|.*") {
            if let Ok(t) = FreeText::multiline(&s, 1000) {
                prop_assert!(!t.as_str().chars().any(|c| forbidden_in_text(c, true)));
            }
        }
    }
}
