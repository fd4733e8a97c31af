//! The secondary's and primary's outgoing DNS: SOA queries and zone transfers to a
//! primary (IXFR first, AXFR fallback) and NOTIFY to secondaries, every socket bound
//! to the server's own address, TSIG-signed when the zone has a key.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::tsig::{self, Key, ResponseVerifier};
use crate::xfr::{self, Collector, Received, XfrError};
use crate::zone::Zone;

/// An outgoing exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket trouble.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The answer is not what was asked for or does not decode.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// The server answered with an error rcode.
    #[error("server answered {0}")]
    Rcode(ResponseCode),
    /// TSIG failed.
    #[error(transparent)]
    Tsig(#[from] tsig::TsigError),
    /// The transfer stream is unusable.
    #[error(transparent)]
    Xfr(#[from] XfrError),
}

/// Where and how to talk to a primary.
#[derive(Clone, Debug)]
pub struct Upstream<'a> {
    /// The primary's `ip:port`.
    pub addr: SocketAddr,
    /// Our own address (outgoing sockets bind here).
    pub bind: IpAddr,
    /// The zone's TSIG key.
    pub key: Option<&'a Key>,
    /// Per-step timeout.
    pub timeout: Duration,
}

/// How a refresh ended.
#[derive(Debug)]
pub enum Refreshed {
    /// The primary's serial is not newer.
    Current(u32),
    /// A new version, and whether it came incrementally.
    Updated {
        /// The new zone.
        zone: Box<Zone>,
        /// IXFR differences were applied (not a full copy).
        incremental: bool,
    },
}

async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// Encodes a request and signs it when a key is given; returns the bytes and MAC.
fn encode(msg: &Message, key: Option<&Key>) -> Result<(Vec<u8>, Option<Vec<u8>>), ClientError> {
    let bytes = msg
        .to_vec()
        .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
    match key {
        Some(k) => {
            let (signed, mac) = tsig::sign_request(k, bytes, tsig::now())?;
            Ok((signed, Some(mac)))
        }
        None => Ok((bytes, None)),
    }
}

/// Checks and decodes one answer message to request `id`.
fn decode(
    bytes: &[u8],
    id: u16,
    verifier: Option<&mut ResponseVerifier<'_>>,
) -> Result<Message, ClientError> {
    if let Some(v) = verifier {
        v.verify(bytes)?;
    }
    let body = match tsig::find(bytes) {
        Some(rr) => {
            let mut b = tsig::strip(bytes, &rr);
            b[0..2].copy_from_slice(&bytes[0..2]);
            b
        }
        None => bytes.to_vec(),
    };
    let msg = Message::from_vec(&body).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
    if msg.metadata.id != id || msg.metadata.message_type != MessageType::Response {
        return Err(ClientError::BadAnswer("id or QR mismatch".into()));
    }
    if msg.metadata.response_code != ResponseCode::NoError {
        return Err(ClientError::Rcode(msg.metadata.response_code));
    }
    Ok(msg)
}

async fn udp_exchange(up: &Upstream<'_>, request: &Message) -> Result<Message, ClientError> {
    let socket = UdpSocket::bind(SocketAddr::new(up.bind, 0)).await?;
    socket.connect(up.addr).await?;
    let (bytes, mac) = encode(request, up.key)?;
    socket.send(&bytes).await?;
    let mut buf = vec![0u8; 65535];
    timed(up.timeout, async {
        loop {
            let n = socket.recv(&mut buf).await?;
            let mut verifier = match (up.key, &mac) {
                (Some(k), Some(m)) => Some(ResponseVerifier::new(k, m.clone())),
                _ => None,
            };
            match decode(&buf[..n], request.metadata.id, verifier.as_mut()) {
                Err(ClientError::BadAnswer(_)) => continue,
                other => return other,
            }
        }
    })
    .await
}

async fn connect(up: &Upstream<'_>) -> Result<TcpStream, ClientError> {
    let socket = match up.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(up.bind, 0))?;
    timed(up.timeout, async { Ok(socket.connect(up.addr).await?) }).await
}

async fn read_frame(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    timed(timeout, async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    })
    .await
}

/// The primary's current serial of `zone` (SOA query over UDP, TCP if truncated).
pub async fn query_soa(up: &Upstream<'_>, zone: &Name) -> Result<u32, ClientError> {
    let mut q = Message::query();
    q.add_query(Query::query(zone.clone(), RecordType::SOA));
    let answer = udp_exchange(up, &q).await?;
    answer
        .answers
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && r.name == *zone)
        .and_then(xfr::soa_serial)
        .ok_or_else(|| ClientError::BadAnswer("no SOA in the answer".into()))
}

/// Runs one AXFR or IXFR (when `have` is given) over TCP and collects the stream.
pub async fn transfer(
    up: &Upstream<'_>,
    zone: &Name,
    have: Option<&Zone>,
) -> Result<Received, ClientError> {
    let ixfr = have.is_some();
    let mut q = Message::query();
    q.add_query(Query::query(
        zone.clone(),
        if ixfr {
            RecordType::IXFR
        } else {
            RecordType::AXFR
        },
    ));
    if let Some(z) = have {
        q.add_authority(z.soa().clone());
    }
    let (bytes, mac) = encode(&q, up.key)?;
    let mut stream = connect(up).await?;
    let len = u16::try_from(bytes.len()).map_err(|_| ClientError::BadAnswer("huge".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    timed(up.timeout, async { Ok(stream.write_all(&framed).await?) }).await?;
    let mut verifier = match (up.key, mac) {
        (Some(k), Some(m)) => Some(ResponseVerifier::new(k, m)),
        _ => None,
    };
    let mut collector = Collector::new();
    loop {
        let frame = read_frame(&mut stream, up.timeout).await?;
        let msg = decode(&frame, q.metadata.id, verifier.as_mut())?;
        if collector.push(msg.answers, ixfr)? {
            break;
        }
    }
    if verifier.as_ref().is_some_and(|v| !v.complete()) {
        return Err(tsig::TsigError::Unsigned.into());
    }
    Ok(collector.finish()?)
}

/// Brings `have` up to date from the primary: SOA check, IXFR, AXFR fallback.
pub async fn refresh(
    up: &Upstream<'_>,
    zone: &Name,
    have: Option<&Zone>,
) -> Result<Refreshed, ClientError> {
    let serial = query_soa(up, zone).await?;
    if let Some(h) = have {
        if !xfr::serial_gt(serial, h.serial()) {
            return Ok(Refreshed::Current(h.serial()));
        }
        match transfer(up, zone, Some(h)).await {
            Ok(Received::UpToDate(s)) if !xfr::serial_gt(s, h.serial()) => {
                return Ok(Refreshed::Current(h.serial()))
            }
            Ok(Received::Full(records)) => {
                let zone = Zone::from_records(zone.clone(), records).map_err(XfrError::from)?;
                return Ok(Refreshed::Updated {
                    zone: Box::new(zone),
                    incremental: false,
                });
            }
            Ok(Received::Incremental(diffs)) => match xfr::apply_incremental(h, diffs) {
                Ok(zone) => {
                    return Ok(Refreshed::Updated {
                        zone: Box::new(zone),
                        incremental: true,
                    })
                }
                Err(e) => tracing::info!(zone = %zone, error = %e, "IXFR unusable; AXFR"),
            },
            Ok(Received::UpToDate(_)) => {}
            Err(e @ ClientError::Tsig(_)) => return Err(e),
            Err(e) => tracing::info!(zone = %zone, error = %e, "IXFR failed; AXFR"),
        }
    }
    match transfer(up, zone, None).await? {
        Received::Full(records) => Ok(Refreshed::Updated {
            zone: Box::new(Zone::from_records(zone.clone(), records).map_err(XfrError::from)?),
            incremental: false,
        }),
        _ => Err(ClientError::BadAnswer("AXFR answered incrementally".into())),
    }
}

/// Sends one NOTIFY for `soa`'s zone to `target` and waits for its answer.
pub async fn notify_once(
    bind: IpAddr,
    target: SocketAddr,
    soa: &Record,
    key: Option<&Key>,
    timeout: Duration,
) -> Result<(), ClientError> {
    let mut q = Message::new(rand_id(), MessageType::Query, OpCode::Notify);
    q.metadata.authoritative = true;
    q.add_query(Query::query(soa.name.clone(), RecordType::SOA));
    q.add_answer(soa.clone());
    let up = Upstream {
        addr: target,
        bind,
        key,
        timeout,
    };
    let answer = udp_exchange(&up, &q).await?;
    if answer.metadata.op_code != OpCode::Notify {
        return Err(ClientError::BadAnswer("not a NOTIFY answer".into()));
    }
    Ok(())
}

fn rand_id() -> u16 {
    Message::query().metadata.id
}
