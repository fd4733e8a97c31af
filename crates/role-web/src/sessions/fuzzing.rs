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
    use proptest::prelude::*;

    /// Valid commands, as pieces to splice and corrupt.
    const PIECES: &[&[u8]] = &[
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$2\r\n10\r\n$3\r\nabc\r\n",
        b"*6\r\n$3\r\nSET\r\n$6\r\nk_LOCK\r\n$1\r\nt\r\n$2\r\nNX\r\n$2\r\nPX\r\n$3\r\n100\r\n",
        b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$1\r\n5\r\n",
        b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n",
        b"*1\r\n$4\r\nPING\r\n",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            super::exercise(&data);
        }

        #[test]
        fn corrupted_commands(
            picks in proptest::collection::vec(0..PIECES.len(), 1..8),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            let mut data: Vec<u8> = picks.iter().flat_map(|&i| PIECES[i].iter().copied()).collect();
            for (at, b) in flips {
                let n = data.len();
                data[at % n] = b;
            }
            super::exercise(&data);
        }
    }

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
