//! The body of the fuzz target `fuzz/fuzz_targets/resp.rs` (kept in the library so
//! unit tests run it too): arbitrary bytes through the parser, each command parsed
//! through the store, with the invariants checked by assertions.

use std::time::{Duration, Instant};

use super::command::{execute, Write};
use super::resp::{encode_command, parse};
use super::store::{Limits, Store};

/// Parse `data` command by command, as a connection would, and run every command
/// through a small store. Panics if a parse takes no bytes or more than it has, if a
/// command does not survive encode → parse unchanged, or if a write does not survive
/// the replication encoding.
pub fn exercise(data: &[u8]) {
    let mut store = Store::new(Limits {
        site_bytes: 4096,
        max_ttl: Duration::from_secs(60),
    });
    let now = Instant::now();
    let mut rest = data;
    while let Ok(Some((args, used))) = parse(rest) {
        assert!(
            used > 0 && used <= rest.len(),
            "parse took {used} of {}",
            rest.len()
        );
        rest = &rest[used..];
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut again = Vec::new();
        encode_command(&refs, &mut again);
        assert_eq!(parse(&again), Ok(Some((args.clone(), again.len()))));
        let out = execute(&mut store, "fuzz.example", &args, now);
        let mut reply = Vec::new();
        out.reply.encode(&mut reply);
        assert!(reply.ends_with(b"\r\n"));
        if let Some(w) = out.write {
            let mut wire = Vec::new();
            w.encode("fuzz.example", &mut wire);
            let (wargs, n) = parse(&wire).ok().flatten().expect("a write parses");
            assert_eq!(n, wire.len());
            assert_eq!(Write::decode(&wargs), Some(("fuzz.example".to_owned(), w)));
        }
        assert!(store.site_bytes("fuzz.example") <= 4096);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds() {
        for seed in [
            &b"*3\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$4\r\n1440\r\n"[..],
            b"*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$4\r\n1440\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n",
            b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*1\r\n$4\r\nQUIT\r\n",
            b"\xff\x00*",
            b"",
        ] {
            super::exercise(seed);
        }
        let mut big = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 5000));
        big.extend(b"\r\n");
        super::exercise(&big);
    }
}
