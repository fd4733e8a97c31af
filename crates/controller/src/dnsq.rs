//! A small DNS stub client: the controller's one way of asking a DNS server a
//! question (TXT proofs of name ownership, `mail check`'s SPF/DKIM/DMARC/MX, HELO
//! names and PTRs).
//!
//! A query goes over UDP (three tries) and again over TCP when the answer is
//! truncated, so a 2048-bit DKIM key or a long SPF record is read whole. Errors are
//! sentences for people (they end up in API answers and `mail check` verdicts).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one UDP try waits for its answer.
const UDP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the TCP retry of a truncated answer may take in all.
const TCP_TIMEOUT: Duration = Duration::from_secs(6);

/// Ask `server` for the `rtype` records at `name` (recursion desired, so a
/// resolver answers as well as an authoritative server).
pub async fn query(server: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, String> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let answer = udp_exchange(server, &bytes, id).await?;
    if answer.metadata.truncation {
        return tcp_exchange(server, &bytes, id).await;
    }
    Ok(answer)
}

/// The records of `rtype` in `msg`'s answer as texts: TXT strings joined, MX as
/// `preference exchange`, addresses and PTR names as written.
pub fn texts(msg: &Message, rtype: RecordType) -> Vec<String> {
    msg.answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            RData::MX(m) => Some(format!("{} {}", m.preference, m.exchange)),
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::PTR(p) => Some(p.0.to_string()),
            _ => None,
        })
        .collect()
}

async fn udp_exchange(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(server)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    for _ in 0..3 {
        sock.send(bytes)
            .await
            .map_err(|e| format!("{server}: {e}"))?;
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(UDP_TIMEOUT, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                Ok(m) if m.metadata.id == id => return Ok(m),
                _ => continue,
            },
            Ok(Err(e)) => return Err(format!("{server}: {e}")),
            Err(_) => continue,
        }
    }
    Err(format!("{server} did not answer"))
}

async fn tcp_exchange(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Message, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        s.write_all(&out).await?;
        let n = s.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(TCP_TIMEOUT, io)
        .await
        .map_err(|_| format!("{server} did not answer over TCP"))?
        .map_err(|e| format!("{server}: {e}"))?;
    match Message::from_vec(&buf) {
        Ok(m) if m.metadata.id == id => Ok(m),
        Ok(_) => Err(format!("{server} answered another query")),
        Err(e) => Err(format!("{server}: {e}")),
    }
}
