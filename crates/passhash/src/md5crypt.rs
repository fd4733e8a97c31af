//! MD5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD scheme) over RustCrypto's `md-5`:
//! no maintained crate offers it, and it is short. Verification only: hostplane never
//! writes MD5-crypt.

use md5::{Digest, Md5};

const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Split `salt$hash` (after `$1$`): a salt of at most 8 characters, a 22-character hash.
pub fn parse(rest: &str) -> Result<(&str, &str), &'static str> {
    let (salt, hash) = rest.split_once('$').ok_or("expected `$salt$hash`")?;
    if salt.len() > 8 || salt.contains('\n') || salt.contains(':') {
        return Err("salt must be at most 8 characters");
    }
    if hash.len() != 22
        || !hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    {
        return Err("hash must be 22 characters of [./0-9A-Za-z]");
    }
    Ok((salt, hash))
}

fn digest(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The 22-character MD5-crypt hash of `password` with `salt`.
fn compute(password: &[u8], salt: &[u8]) -> String {
    let alt = digest(&[password, salt, password]);
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin: [u8; 16] = ctx.finalize().into();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize().into();
    }
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(char::from(CRYPT64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let f = |i: usize| u32::from(fin[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    put(f(11), 2);
    out
}

/// Whether `password` matches `rest` (the stored hash after `$1$`), compared in
/// constant time.
pub fn verify(password: &[u8], rest: &str) -> bool {
    let Ok((salt, hash)) = parse(rest) else {
        return false;
    };
    let computed = compute(password, salt.as_bytes());
    computed
        .bytes()
        .zip(hash.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
        && computed.len() == hash.len()
}
