//! `hostplane sendmail`: the sendmail-compatible command PHP's `mail()` runs
//! (`sendmail_path`), as the site's user. It accepts what PHP and common
//! applications pass — `-t`, `-i`, `-oi`, `-f SENDER` / `-fSENDER`, `-r SENDER`,
//! `-F NAME` (ignored), other `-oX` and `-bm` (ignored), recipients as arguments
//! — reads the message on stdin (up to EOF with `-i`, else also up to a line with
//! a single `.`), hands it to the web engine's sendmail socket and exits 0 only
//! once the engine has spooled it durably. Any error: a line on stderr and a
//! non-zero exit (sysexits), so `mail()` returns false.

use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use proto::sendmail::{SendmailReply, SendmailRequest, SENDMAIL_FORMAT};

/// sysexits: bad usage.
pub const EX_USAGE: i32 = 64;
/// sysexits: bad input data.
pub const EX_DATAERR: i32 = 65;
/// sysexits: the service is unavailable.
pub const EX_UNAVAILABLE: i32 = 69;
/// sysexits: temporary failure, try again.
pub const EX_TEMPFAIL: i32 = 75;
/// sysexits: not permitted.
pub const EX_NOPERM: i32 = 77;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The engine's socket (`--socket`, put in `sendmail_path` by the engine).
    pub socket: PathBuf,
    /// The request for the engine.
    pub request: SendmailRequest,
    /// `-i`/`-oi`: a line with a single dot does not end the message.
    pub ignore_dots: bool,
}

/// Parse sendmail's arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut socket = None;
    let mut req = SendmailRequest {
        format: SENDMAIL_FORMAT,
        ..SendmailRequest::default()
    };
    let mut ignore_dots = false;
    let mut it = args.iter();
    let mut only_rcpts = false;
    while let Some(a) = it.next() {
        if only_rcpts || !a.starts_with('-') || a == "-" {
            req.recipients.push(a.clone());
            continue;
        }
        let mut value = |flag: &str| -> Result<String, String> {
            match a.strip_prefix(flag).filter(|v| !v.is_empty()) {
                Some(v) => Ok(v.to_string()),
                None => it.next().cloned().ok_or(format!("{flag} needs a value")),
            }
        };
        match a.as_str() {
            "--" => only_rcpts = true,
            "-t" => req.extract = true,
            "-i" | "-oi" => ignore_dots = true,
            // deliver mode, error reporting, verbosity: nothing to choose here
            "-bm" | "-v" => {}
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            _ if a.starts_with("-f") => req.from = Some(value("-f")?),
            _ if a.starts_with("-r") => req.from = Some(value("-r")?),
            _ if a.starts_with("-F") => {
                value("-F")?;
            }
            _ if a.starts_with("-o") => {}
            _ if a.starts_with("-bs") => {
                return Err("-bs (SMTP on stdin) is not supported; use -t".into())
            }
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let socket = socket.ok_or("--socket PATH is required (the engine sets it in sendmail_path)")?;
    Ok(Args {
        socket,
        request: req,
        ignore_dots,
    })
}

/// Read the message from `input`: to EOF, or (without `-i`) to a line `.`.
pub fn read_message(input: &mut dyn BufRead, ignore_dots: bool) -> std::io::Result<Vec<u8>> {
    if ignore_dots {
        let mut v = Vec::new();
        input.read_to_end(&mut v)?;
        return Ok(v);
    }
    let mut v = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(v);
        }
        if line == b".\n" || line == b".\r\n" || line == b"." {
            return Ok(v);
        }
        v.extend_from_slice(&line);
    }
}

/// Hand `message` to the engine; the engine's reply.
pub fn send(args: &Args, message: &[u8]) -> Result<SendmailReply, (i32, String)> {
    let mut s = UnixStream::connect(&args.socket).map_err(|e| {
        (
            EX_TEMPFAIL,
            format!(
                "cannot reach the web server's mail service at {}: {e}",
                args.socket.display()
            ),
        )
    })?;
    let io = |e: std::io::Error| (EX_TEMPFAIL, format!("talking to the web server: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(io)?;
    let mut req = serde_json::to_vec(&args.request).map_err(|e| (EX_USAGE, e.to_string()))?;
    req.push(b'\n');
    s.write_all(&req).map_err(io)?;
    s.write_all(message).map_err(io)?;
    s.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut answer = String::new();
    std::io::BufReader::new(&s)
        .read_line(&mut answer)
        .map_err(io)?;
    serde_json::from_str(&answer).map_err(|_| {
        (
            EX_TEMPFAIL,
            "the web server gave no answer; the message was not sent".to_string(),
        )
    })
}

/// The whole command: parse, read stdin, send; returns the exit code (errors on
/// `stderr`).
pub fn main(args: &[String], stdin: &mut dyn BufRead, stderr: &mut dyn Write) -> i32 {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(stderr, "sendmail: {e}");
            return EX_USAGE;
        }
    };
    let message = match read_message(stdin, args.ignore_dots) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(stderr, "sendmail: reading the message: {e}");
            return EX_DATAERR;
        }
    };
    match send(&args, &message) {
        Ok(r) if r.ok => 0,
        Ok(r) => {
            let _ = writeln!(stderr, "sendmail: not sent: {}", r.detail);
            if r.detail.contains("no mail service") {
                EX_UNAVAILABLE
            } else if r.detail.contains("cannot store") {
                EX_TEMPFAIL
            } else {
                EX_NOPERM
            }
        }
        Err((code, e)) => {
            let _ = writeln!(stderr, "sendmail: {e}");
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn php_and_common_application_arguments() {
        let a = args(&["--socket", "/s", "-t", "-i", "-fshop@example.com"]).unwrap();
        assert!(a.request.extract && a.ignore_dots);
        assert_eq!(a.request.from.as_deref(), Some("shop@example.com"));
        assert_eq!(a.socket, PathBuf::from("/s"));
        let a = args(&[
            "--socket", "/s", "-oi", "-f", "x", "-F", "Shop", "a@b.c", "--", "-d@e.f",
        ])
        .unwrap();
        assert_eq!(a.request.from.as_deref(), Some("x"));
        assert_eq!(a.request.recipients, ["a@b.c", "-d@e.f"]);
        assert!(!a.request.extract && a.ignore_dots);
        assert!(args(&["-t"]).unwrap_err().contains("--socket"));
        assert!(args(&["--socket", "/s", "-bs"])
            .unwrap_err()
            .contains("-bs"));
        assert!(args(&["--socket", "/s", "-X"])
            .unwrap_err()
            .contains("unknown"));
    }

    #[test]
    fn a_dot_line_ends_the_message_without_i() {
        let mut input: &[u8] = b"a\n.\nb\n";
        assert_eq!(read_message(&mut input, false).unwrap(), b"a\n");
        let mut input: &[u8] = b"a\n.\nb\n";
        assert_eq!(read_message(&mut input, true).unwrap(), b"a\n.\nb\n");
    }
}
