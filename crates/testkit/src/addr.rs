//! Per-test blocks of loopback addresses: each test owns `127.A.B.0/24`, derived
//! from a process-wide counter and the process id, so tests running in parallel
//! (threads or processes) never share an address.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Result};

static BLOCK_COUNTER: AtomicU32 = AtomicU32::new(0);
/// The next host of the [`NET_ENV`] range (shared by every test of the process).
pub(crate) static SHARED_HOST: AtomicU32 = AtomicU32::new(1);

/// Environment variable naming one `/24` for every test of this process, e.g.
/// `HOSTPLANE_TEST_NET=127.0.17`: on a machine shared with other test runs, each run
/// keeps to a range of its own. The agents of all of the process's clusters then take
/// the next free host of that range (at most 254 agents per process). Unset: each test
/// gets a block of its own derived from the pid ([`AddrBlock::next`]).
pub const NET_ENV: &str = "HOSTPLANE_TEST_NET";

/// A block of loopback addresses `127.A.B.1`–`127.A.B.254` owned by one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrBlock {
    a: u8,
    b: u8,
    /// The [`NET_ENV`] range, shared by every test of the process.
    pub(crate) shared: bool,
}

impl AddrBlock {
    /// The [`NET_ENV`] range if it is set (`127.A.B`), else [`AddrBlock::next`].
    pub fn from_env() -> Result<Self> {
        let Ok(net) = std::env::var(NET_ENV) else {
            return Ok(Self::next());
        };
        let parts: Vec<&str> = net.trim().split('.').collect();
        match parts.as_slice() {
            ["127", a, b] => match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => Ok(Self { a, b, shared: true }),
                _ => bail!("{NET_ENV}={net:?}: expected 127.A.B with A and B 0–255"),
            },
            _ => bail!("{NET_ENV}={net:?}: expected a loopback /24 as 127.A.B, e.g. 127.0.17"),
        }
    }

    /// The next block of this process (a process-wide counter and the pid).
    pub fn next() -> Self {
        Self::derive(
            std::process::id(),
            BLOCK_COUNTER.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// The block of counter value `n` in process `pid` (pure). Each process owns
    /// 64 consecutive blocks; `127.0.x.x` and `127.1.x.x` are never used.
    pub fn derive(pid: u32, n: u32) -> Self {
        const SPAN: u32 = 253 * 256;
        let v = (pid.wrapping_mul(64) % SPAN + n % 64) % SPAN;
        // Both values fit in a u8 by construction (2..=254 and 0..=255).
        Self {
            a: u8::try_from(2 + v / 256).unwrap_or(254),
            b: u8::try_from(v % 256).unwrap_or(0),
            shared: false,
        }
    }

    /// Address `host` (1–254) of the block.
    pub fn addr(&self, host: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, self.a, self.b, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_differ_per_counter_and_pid() {
        for pid in [1, 2, 4242, 65_000, 4_000_000, u32::MAX] {
            for n in 0..200 {
                let b = AddrBlock::derive(pid, n);
                assert!(b.a >= 2, "{b:?}");
            }
        }
        for pid in [1u32, 2, 4242] {
            let blocks: std::collections::BTreeSet<_> =
                (0..64).map(|n| AddrBlock::derive(pid, n).addr(1)).collect();
            assert_eq!(blocks.len(), 64);
        }
        assert_ne!(AddrBlock::derive(1, 0), AddrBlock::derive(2, 0));
        assert_eq!(
            AddrBlock::derive(0, 3).addr(7),
            IpAddr::V4(Ipv4Addr::new(127, 2, 3, 7))
        );
        assert_ne!(AddrBlock::next(), AddrBlock::next());
    }
}
