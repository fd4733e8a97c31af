//! The Redis protocol (RESP2) subset PHP's `redis` session handler speaks: commands
//! arrive as arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n`), answers
//! are simple strings, errors, integers and bulk strings.
//!
//! [`parse`] is pure and bounded: at most [`MAX_ARGS`] arguments, each at most
//! [`MAX_BULK`] bytes and [`MAX_COMMAND`] in all (known from the length lines, before
//! the bytes arrive), length lines at most 20 digits. Anything else (inline
//! commands, nested arrays, negative lengths) is a [`RespError`], after which the
//! connection is closed: a peer that does not speak the protocol gets no second
//! chance to make the server guess. The fuzz target `fuzz/fuzz_targets/resp.rs`
//! runs it over arbitrary bytes.

/// Most arguments one command may have (`SET key value EX 1440 NX` is 6).
pub const MAX_ARGS: usize = 16;
/// Largest argument (a session's serialised data): 4 MiB.
pub const MAX_BULK: usize = 4 << 20;
/// Largest command (all its arguments): one session and its key, with room.
pub const MAX_COMMAND: usize = MAX_BULK + (64 << 10);
/// Longest length line (`*16` or `$4194304`) before its `\r\n`.
const MAX_LINE: usize = 20;

/// Bytes that are not a command this server accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    /// Not an array of bulk strings (inline commands and other types are refused).
    #[error("Protocol error: expected '{expected}', got '{got}'")]
    Unexpected {
        /// The type byte wanted.
        expected: char,
        /// The byte found.
        got: char,
    },
    /// A length that is not a number, negative where it may not be, or too long.
    #[error("Protocol error: invalid {0} length")]
    BadLength(&'static str),
    /// More than [`MAX_ARGS`] arguments, or none.
    #[error("Protocol error: a command has 1 to {MAX_ARGS} arguments")]
    TooManyArgs,
    /// An argument over [`MAX_BULK`] bytes, or a command over [`MAX_COMMAND`].
    #[error(
        "Protocol error: an argument is over {MAX_BULK} bytes or a command over {MAX_COMMAND}"
    )]
    TooLarge,
    /// A bulk string not followed by `\r\n`.
    #[error("Protocol error: missing CRLF after a bulk string")]
    MissingCrlf,
}

/// A parsed command: its arguments (the first is the command name).
pub type Args = Vec<Vec<u8>>;

/// One command from the front of `buf`: `Ok(None)` while it is incomplete, else the
/// arguments and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Args, usize)>, RespError> {
    let mut pos = 0;
    let Some(n) = length_line(buf, &mut pos, b'*', "multibulk")? else {
        return Ok(None);
    };
    if n == 0 || n > MAX_ARGS as u64 {
        return Err(RespError::TooManyArgs);
    }
    let mut args = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let Some(len) = length_line(buf, &mut pos, b'$', "bulk")? else {
            return Ok(None);
        };
        if len > MAX_BULK as u64 || pos as u64 + len > MAX_COMMAND as u64 {
            return Err(RespError::TooLarge);
        }
        let len = len as usize;
        let end = pos + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(RespError::MissingCrlf);
        }
        args.push(buf[pos..end].to_vec());
        pos = end + 2;
    }
    Ok(Some((args, pos)))
}

/// `<kind><digits>\r\n` at `*pos`; advances past it.
fn length_line(
    buf: &[u8],
    pos: &mut usize,
    kind: u8,
    what: &'static str,
) -> Result<Option<u64>, RespError> {
    let rest = &buf[*pos..];
    let Some(&first) = rest.first() else {
        return Ok(None);
    };
    if first != kind {
        return Err(RespError::Unexpected {
            expected: kind as char,
            got: first as char,
        });
    }
    let Some(cr) = rest.iter().take(MAX_LINE + 2).position(|&b| b == b'\r') else {
        if rest.len() > MAX_LINE + 1 {
            return Err(RespError::BadLength(what));
        }
        return Ok(None);
    };
    if rest.len() < cr + 2 {
        return Ok(None);
    }
    if rest[cr + 1] != b'\n' {
        return Err(RespError::BadLength(what));
    }
    let digits = &rest[1..cr];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadLength(what));
    }
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(RespError::BadLength(what))?;
    *pos += cr + 2;
    Ok(Some(n))
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and the like.
    Simple(&'static str),
    /// `-ERR …`: the text after the `-` (one line).
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` and the bytes, or `$-1` (no such key).
    Bulk(Option<Vec<u8>>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// `-ERR <msg>`.
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(format!("ERR {}", msg.into()))
    }

    /// Append the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
            }
            Reply::Error(e) => {
                out.push(b'-');
                // One line: CR/LF would end the error early and desynchronise.
                out.extend(
                    e.bytes()
                        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
                );
            }
            Reply::Int(n) => out.extend_from_slice(format!(":{n}").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1"),
            Reply::Bulk(Some(v)) => {
                out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                out.extend_from_slice(v);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Append `args` as a command (an array of bulk strings) to `out`: how writes travel
/// to the other servers, parsed there by [`parse`].
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_partial_commands() {
        let wire = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n*1\r\n$4\r\nPING\r\n";
        let (args, used) = parse(wire).unwrap().unwrap();
        assert_eq!(args, vec![b"GET".to_vec(), b"key:1".to_vec()]);
        let (next, used2) = parse(&wire[used..]).unwrap().unwrap();
        assert_eq!(next, vec![b"PING".to_vec()]);
        assert_eq!(used + used2, wire.len());
        for cut in 0..used {
            assert_eq!(parse(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn round_trips_binary_values() {
        let mut out = Vec::new();
        encode_command(&[b"SETEX", b"k", b"1440", b"a\r\nb\0c"], &mut out);
        let (args, used) = parse(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(args[3], b"a\r\nb\0c");
    }

    #[test]
    fn refuses_what_it_does_not_speak() {
        assert!(matches!(
            parse(b"PING\r\n"),
            Err(RespError::Unexpected { .. })
        ));
        assert_eq!(parse(b"*0\r\n"), Err(RespError::TooManyArgs));
        assert_eq!(parse(b"*17\r\n"), Err(RespError::TooManyArgs));
        assert_eq!(parse(b"*-1\r\n"), Err(RespError::BadLength("multibulk")));
        assert_eq!(parse(b"*1\r\n$-1\r\n"), Err(RespError::BadLength("bulk")));
        assert_eq!(parse(b"*1\r\n$4194305\r\n"), Err(RespError::TooLarge));
        // two large arguments: refused at the second length line, before its bytes
        let mut two = b"*3\r\n$3\r\nSET\r\n$4194304\r\n".to_vec();
        two.extend(std::iter::repeat_n(b'k', 4 << 20));
        two.extend(b"\r\n$100000\r\n");
        assert_eq!(parse(&two), Err(RespError::TooLarge));
        assert_eq!(parse(b"*1\r\n$2\r\nabcd"), Err(RespError::MissingCrlf));
        assert_eq!(
            parse(b"*1\r\n:1\r\n"),
            Err(RespError::Unexpected {
                expected: '$',
                got: ':'
            })
        );
        assert_eq!(
            parse(b"*99999999999999999999999\r\n"),
            Err(RespError::BadLength("multibulk"))
        );
        assert_eq!(parse(b"*1\rx"), Err(RespError::BadLength("multibulk")));
        // a length line that never ends is refused once it is too long
        assert_eq!(parse(&[b'*'; 30]), Err(RespError::BadLength("multibulk")));
        assert_eq!(parse(b"*1"), Ok(None));
    }

    #[test]
    fn encodes_replies() {
        let mut out = Vec::new();
        Reply::OK.encode(&mut out);
        Reply::Int(3).encode(&mut out);
        Reply::Bulk(None).encode(&mut out);
        Reply::Bulk(Some(b"v".to_vec())).encode(&mut out);
        Reply::err("bad\r\nthing").encode(&mut out);
        assert_eq!(out, b"+OK\r\n:3\r\n$-1\r\n$1\r\nv\r\n-ERR bad  thing\r\n");
    }
}
