//! Response compression: which encoding a client accepts (`Accept-Encoding` with
//! q-values), which content types are worth compressing, and gzip / brotli of a
//! whole file (the result is cached by [`crate::cache`]).

use std::io::Write;

/// A content coding we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `br`
    Brotli,
    /// `gzip`
    Gzip,
}

impl Encoding {
    /// The token for `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Smallest body worth compressing.
pub const MIN_SIZE: u64 = 256;
/// Largest file compressed (whole, in memory).
pub const MAX_SIZE: u64 = 4 << 20;

/// Whether `mime` is text-like (compresses well).
pub fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "application/rss+xml"
                | "application/atom+xml"
                | "application/manifest+json"
                | "application/wasm"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
        )
}

/// The best encoding `accept` (an `Accept-Encoding` value) allows: brotli over gzip
/// at equal preference; `None` for identity. `q=0` excludes; `*` counts for both.
pub fn negotiate(accept: &str) -> Option<Encoding> {
    let (mut br, mut gzip, mut star) = (None::<f32>, None::<f32>, None::<f32>);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match name.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Some(Encoding::Brotli)
    } else if gzip > 0.0 {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// Compress `data` with `enc` (gzip level 6, brotli quality 5: fast, and cached).
pub fn compress(data: &[u8], enc: Encoding) -> std::io::Result<Vec<u8>> {
    match enc {
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 3),
                flate2::Compression::new(6),
            );
            w.write_all(data)?;
            w.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::with_capacity(data.len() / 3);
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 64 << 10, 5, 22);
                w.write_all(data)?;
                w.flush()?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate("gzip, deflate, br"), Some(Encoding::Brotli));
        assert_eq!(negotiate("gzip"), Some(Encoding::Gzip));
        assert_eq!(negotiate("br;q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(negotiate("br;q=0.5, gzip;q=0.8"), Some(Encoding::Gzip));
        assert_eq!(negotiate("identity"), None);
        assert_eq!(negotiate(""), None);
        assert_eq!(negotiate("*"), Some(Encoding::Brotli));
        assert_eq!(negotiate("*;q=0, gzip"), Some(Encoding::Gzip));
    }

    #[test]
    fn both_encodings_round_trip() {
        use std::io::Read;
        let text = "hello hostplane ".repeat(200);
        let gz = compress(text.as_bytes(), Encoding::Gzip).unwrap();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        let br = compress(text.as_bytes(), Encoding::Brotli).unwrap();
        let mut back = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(br.len() < text.len() / 10 && gz.len() < text.len() / 10);
    }

    #[test]
    fn text_types_are_compressible() {
        assert!(compressible("text/html"));
        assert!(compressible("application/javascript"));
        assert!(!compressible("image/png"));
        assert!(!compressible("application/octet-stream"));
    }
}
