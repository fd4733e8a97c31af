//! Request paths: percent-decoding and segment rules (pure). The result is a
//! relative path that is then opened beneath the site root with `openat2`
//! (see [`crate::fsafe`]), which is what actually enforces containment; the rules here
//! only refuse what must never be asked for: `..` (also as `%2e%2e`) and dot-files.

use percent_encoding::percent_decode_str;

/// The one dot-directory served: `/.well-known/` (RFC 8615; ACME HTTP-01 lives here).
pub const WELL_KNOWN: &str = ".well-known";

/// A request path that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path, bad percent-encoding, not UTF-8, or a NUL byte.
    #[error("malformed request path")]
    Malformed,
    /// A `..` segment or a dot-file/dot-directory.
    #[error("forbidden path segment")]
    Forbidden,
}

/// A validated request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReqPath {
    /// The decoded segments, none empty, `.`, `..` or starting with a dot (except
    /// [`WELL_KNOWN`]).
    pub segments: Vec<String>,
    /// The path ended with `/` (a directory was asked for).
    pub trailing_slash: bool,
}

impl ReqPath {
    /// The segments joined with `/` (empty for the root), for `openat2`.
    pub fn relative(&self) -> String {
        self.segments.join("/")
    }

    /// The decoded path as the client meant it, starting with `/`.
    pub fn absolute(&self) -> String {
        let mut s = format!("/{}", self.relative());
        if self.trailing_slash && !self.segments.is_empty() {
            s.push('/');
        }
        s
    }

    /// The file name extension of the last segment, lowercase.
    pub fn extension(&self) -> Option<String> {
        let last = self.segments.last()?;
        let (_, ext) = last.rsplit_once('.')?;
        Some(ext.to_ascii_lowercase())
    }
}

/// Decode and check the path part of a request URI (without the query).
pub fn parse(raw: &str) -> Result<ReqPath, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::Malformed);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::Malformed)?;
    if decoded.contains('\0') {
        return Err(PathError::Malformed);
    }
    let mut segments = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(PathError::Forbidden),
            WELL_KNOWN => segments.push(seg.to_string()),
            s if s.starts_with('.') => return Err(PathError::Forbidden),
            s => segments.push(s.to_string()),
        }
    }
    Ok(ReqPath {
        segments,
        trailing_slash: decoded.ends_with('/'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_decode_into_segments() {
        let p = parse("/a%20b//c/./d.TXT").unwrap();
        assert_eq!(p.segments, ["a b", "c", "d.TXT"]);
        assert_eq!(p.relative(), "a b/c/d.TXT");
        assert_eq!(p.extension().as_deref(), Some("txt"));
        assert!(!p.trailing_slash);
        let root = parse("/").unwrap();
        assert!(root.segments.is_empty() && root.trailing_slash);
        assert_eq!(root.absolute(), "/");
        assert_eq!(parse("/x/").unwrap().absolute(), "/x/");
    }

    #[test]
    fn escapes_and_dotfiles_are_forbidden() {
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a/%2E%2E%2fb",
            "/a/..%2f..%2fetc",
            "/.env",
            "/a/.git/config",
            "/%2ehtaccess",
        ] {
            assert_eq!(parse(bad), Err(PathError::Forbidden), "{bad}");
        }
        assert!(parse("/.well-known/acme-challenge/x").is_ok());
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["a/b", "*", "/a%00b", "/%ff%fe"] {
            assert_eq!(parse(bad), Err(PathError::Malformed), "{bad}");
        }
    }
}
