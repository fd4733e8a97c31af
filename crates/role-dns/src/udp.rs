//! Batched UDP I/O for the answer workers.
//!
//! One `recvmmsg` takes every datagram waiting on the socket (up to [`BATCH`]) and one
//! `sendmmsg` sends their answers, instead of a `recvfrom` and a `sendto` per query:
//! under load most of an authoritative server's time is system calls on the UDP
//! socket. Both go through nix's safe wrappers on the tokio socket's descriptor, with
//! readiness from tokio, so an idle worker parks in the runtime like any task.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Most datagrams received (and answers sent) in one system call.
pub(crate) const BATCH: usize = 32;
/// Receive buffer per datagram: the largest UDP payload, so nothing is cut (pages
/// are only made resident as far as datagrams reach).
const MAX_DATAGRAM: usize = 65_535;

/// One datagram received: its length in its buffer and where it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    /// Length of the datagram (its bytes are [`Batch::datagram`]).
    pub len: usize,
    /// The sender.
    pub peer: SocketAddr,
    /// The sender as the kernel gave it (answers go back to it unchanged).
    pub addr: SockaddrStorage,
}

/// An answer to send: an encoded message, shared with the answer cache, whose first
/// four bytes (id and flags) go out from `head` instead: a cached answer is sent as
/// two slices, without being copied.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    head: [u8; 4],
    message: Arc<[u8]>,
}

impl Reply {
    /// `message` as it is.
    pub(crate) fn whole(message: Arc<[u8]>) -> Self {
        let mut head = [0u8; 4];
        if let Some(h) = message.get(..4) {
            head.copy_from_slice(h);
        }
        Self { head, message }
    }

    /// `message` with its first four bytes replaced by `head`.
    pub(crate) fn patched(head: [u8; 4], message: Arc<[u8]>) -> Self {
        Self { head, message }
    }

    /// The bytes as sent.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.slices()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    fn slices(&self) -> [IoSlice<'_>; 2] {
        match self.message.get(4..) {
            Some(rest) => [IoSlice::new(&self.head), IoSlice::new(rest)],
            None => [IoSlice::new(&self.message), IoSlice::new(&[])],
        }
    }
}

/// A worker's receive buffers. (The message headers `recvmmsg`/`sendmmsg` fill hold
/// raw pointers, which may not cross an `.await` in a task that moves between
/// threads: they are made per call, a few kilobytes for a whole batch.)
pub(crate) struct Batch {
    bufs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

/// The std address of a kernel address (`None` for a family other than IPv4/IPv6).
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

impl Batch {
    /// Buffers for [`BATCH`] datagrams.
    pub(crate) fn new() -> Self {
        Self {
            bufs: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
        }
    }

    /// The bytes of the `i`th datagram of the last [`Batch::recv`].
    pub(crate) fn datagram(&self, i: usize, len: usize) -> &[u8] {
        self.bufs
            .get(i)
            .and_then(|b| b.get(..len))
            .unwrap_or_default()
    }

    /// Waits until datagrams are waiting, then receives up to [`BATCH`] of them in
    /// one call. Datagrams cut short (impossible at 65,535 bytes) or from an
    /// unknown address family are left out.
    pub(crate) async fn recv(&mut self, socket: &UdpSocket) -> io::Result<Vec<Received>> {
        let fd = socket.as_raw_fd();
        let bufs = &mut self.bufs;
        socket
            .async_io(Interest::READABLE, || {
                let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
                let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(&mut b[..])])
                    .collect();
                let got = recvmmsg(
                    fd,
                    &mut headers,
                    slices.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )
                .map_err(io::Error::from)?;
                Ok(got
                    .filter(|m| !m.flags.contains(MsgFlags::MSG_TRUNC))
                    .filter_map(|m| {
                        let addr = m.address?;
                        Some(Received {
                            len: m.bytes,
                            peer: socket_addr(&addr)?,
                            addr,
                        })
                    })
                    .collect())
            })
            .await
    }

    /// Sends every answer to its address, as few calls as the kernel allows. An
    /// answer the kernel refuses (e.g. an unroutable address) is skipped and logged;
    /// a full send buffer waits for the socket to be writable.
    pub(crate) async fn send(&self, socket: &UdpSocket, out: &[(Reply, SockaddrStorage)]) {
        let fd = socket.as_raw_fd();
        let mut from = 0;
        while from < out.len() {
            let rest = &out[from..out.len().min(from + BATCH)];
            let sent = socket
                .async_io(Interest::WRITABLE, || {
                    let mut headers =
                        MultiHeaders::<SockaddrStorage>::preallocate(rest.len(), None);
                    let slices: Vec<[IoSlice<'_>; 2]> =
                        rest.iter().map(|(r, _)| r.slices()).collect();
                    let addrs: Vec<Option<SockaddrStorage>> =
                        rest.iter().map(|(_, a)| Some(*a)).collect();
                    let none: [ControlMessage<'_>; 0] = [];
                    sendmmsg(
                        fd,
                        &mut headers,
                        slices.iter(),
                        &addrs,
                        none,
                        MsgFlags::MSG_DONTWAIT,
                    )
                    .map(Iterator::count)
                    .map_err(io::Error::from)
                })
                .await;
            match sent {
                Ok(n) if n > 0 => from += n,
                Ok(_) => from += 1,
                Err(e) => {
                    let to = rest.first().map(|(_, a)| a.to_string()).unwrap_or_default();
                    tracing::debug!(peer = to, error = %e, "udp send failed");
                    from += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of datagrams from two senders comes in as one batch (or a few) and
    /// every answer reaches its own sender.
    #[tokio::test]
    async fn batches_receive_and_answer_their_senders() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let at = server.local_addr().expect("addr");
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        for i in 0..10u8 {
            a.send_to(&[b'a', i], at).await.expect("send");
            b.send_to(&[b'b', i], at).await.expect("send");
        }
        let mut batch = Batch::new();
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let got = batch.recv(&server).await.expect("recv");
            assert!(!got.is_empty() && got.len() <= BATCH);
            let mut out = Vec::new();
            for (i, r) in got.iter().enumerate() {
                assert_eq!(socket_addr(&r.addr), Some(r.peer));
                let d = batch.datagram(i, r.len).to_vec();
                assert_eq!(d.len(), 2);
                assert_eq!(
                    r.peer,
                    if d[0] == b'a' {
                        a.local_addr().expect("a")
                    } else {
                        b.local_addr().expect("b")
                    }
                );
                let answer: Arc<[u8]> = vec![0, 0, 0, 0, d[0], d[1], 0xff].into();
                out.push((Reply::patched([9, 9, 9, 9], answer), r.addr));
                seen.push(d);
            }
            batch.send(&server, &out).await;
        }
        for (sock, tag) in [(&a, b'a'), (&b, b'b')] {
            for i in 0..10u8 {
                let mut buf = [0u8; 8];
                let n = sock.recv(&mut buf).await.expect("answer");
                assert_eq!(&buf[..n], &[9, 9, 9, 9, tag, i, 0xff]);
            }
        }
    }
}
