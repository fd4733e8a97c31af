//! TSIG (RFC 8945) with HMAC-SHA256: signing and verifying requests, single responses
//! and multi-message transfer streams.
//!
//! hickory-proto 0.26 only signs messages with its `dnssec-*` features, which would
//! change how every DNSSEC record type is parsed for the whole workspace; TSIG is small,
//! so it is implemented here on raw message bytes with `ring`'s HMAC. The TSIG record
//! is located by walking the wire format ([`find`]), never by re-encoding, so the MAC
//! always covers the exact bytes that were sent.

use base64::Engine as _;
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ring::hmac;

/// TSIG resource record type.
const TYPE_TSIG: u16 = 250;
/// Class ANY, the class of every TSIG record.
const CLASS_ANY: u16 = 255;
/// Allowed clock difference, seconds (RFC 8945 recommends 300).
pub const FUDGE: u16 = 300;
/// TSIG error: the MAC does not verify.
pub const BADSIG: u16 = 16;
/// TSIG error: unknown key or algorithm.
pub const BADKEY: u16 = 17;
/// TSIG error: the signing time is outside the fudge window.
pub const BADTIME: u16 = 18;
/// The only algorithm we speak.
pub const ALGORITHM: &str = "hmac-sha256.";

/// A TSIG problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsigError {
    /// The key description is unusable.
    #[error("bad TSIG key: {0}")]
    BadKey(String),
    /// A message that had to be signed was not.
    #[error("message is not signed")]
    Unsigned,
    /// The signature did not verify (TSIG error code given).
    #[error("TSIG verification failed (error {0})")]
    Verify(u16),
    /// The message is too short or malformed to sign.
    #[error("message cannot be signed")]
    Malformed,
}

/// A shared HMAC-SHA256 key. Its secret is never printed.
///
/// After a rotation a key may carry the secret it replaced ([`Key::with_previous`]):
/// incoming requests signed with that one are accepted (and answered with it) until
/// its expiry; everything we sign uses the current secret.
pub struct Key {
    name: Name,
    hmac: hmac::Key,
    previous: Option<(Box<Key>, u64)>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name.to_ascii())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key from its name, algorithm (`hmac-sha256`) and base64 secret.
    pub fn new(name: &str, algorithm: &str, secret_b64: &str) -> Result<Self, TsigError> {
        let alg = algorithm.trim().trim_end_matches('.').to_ascii_lowercase();
        if alg != "hmac-sha256" {
            return Err(TsigError::BadKey(format!(
                "unsupported algorithm {algorithm:?}"
            )));
        }
        let mut name = Name::from_ascii(name.trim())
            .map_err(|e| TsigError::BadKey(format!("key name: {e}")))?;
        name.set_fqdn(true);
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_b64.trim())
            .map_err(|_| TsigError::BadKey("secret is not base64".into()))?;
        if secret.is_empty() {
            return Err(TsigError::BadKey("empty secret".into()));
        }
        Ok(Self {
            name: name.to_lowercase(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            previous: None,
        })
    }

    /// The same key also accepting the replaced secret `secret_b64` (same name and
    /// algorithm) on incoming requests until `not_after` (unix seconds).
    pub fn with_previous(mut self, secret_b64: &str, not_after: u64) -> Result<Self, TsigError> {
        let old = Key::new(&self.name.to_ascii(), "hmac-sha256", secret_b64)?;
        self.previous = Some((Box::new(old), not_after));
        Ok(self)
    }

    /// The replaced secret, while it is still valid at `now` (unix seconds).
    pub fn previous(&self, now: u64) -> Option<&Key> {
        self.previous
            .as_ref()
            .filter(|(_, not_after)| now < *not_after)
            .map(|(k, _)| &**k)
    }

    /// The key name (lowercase, absolute).
    pub fn name(&self) -> &Name {
        &self.name
    }
}

/// A TSIG record found at the end of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord {
    /// Offset of the record in the message (the signed data ends here).
    pub start: usize,
    /// Key name.
    pub key_name: Name,
    /// Algorithm name.
    pub algorithm: Name,
    /// Signing time, seconds since the epoch (48 bits).
    pub time: u64,
    /// Allowed clock skew.
    pub fudge: u16,
    /// The MAC.
    pub mac: Vec<u8>,
    /// The message id at signing time.
    pub original_id: u16,
    /// TSIG error code.
    pub error: u16,
    /// Other data.
    pub other: Vec<u8>,
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Skips a (possibly compressed) name starting at `pos`.
pub(crate) fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *buf.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xC0 => return buf.get(pos + 1).map(|_| pos + 2),
            _ => return None,
        }
    }
    None
}

/// Offset where the last additional record starts, if the message has one.
fn last_record_offset(msg: &[u8]) -> Option<usize> {
    let qd = be16(msg, 4)?;
    let an = be16(msg, 6)?;
    let ns = be16(msg, 8)?;
    let ar = be16(msg, 10)?;
    if ar == 0 {
        return None;
    }
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    let before_last = u32::from(an) + u32::from(ns) + u32::from(ar) - 1;
    for _ in 0..before_last {
        pos = skip_name(msg, pos)?;
        let rdlen = usize::from(be16(msg, pos + 8)?);
        pos += 10 + rdlen;
    }
    (pos < msg.len()).then_some(pos)
}

fn read_name(msg: &[u8], pos: usize) -> Option<(Name, usize)> {
    let mut decoder = BinDecoder::new(msg);
    decoder.read_slice(pos).ok()?;
    let name = Name::read(&mut decoder).ok()?;
    let end = skip_name(msg, pos)?;
    Some((name, end))
}

/// The TSIG record ending `msg`, if the last additional record is one.
pub fn find(msg: &[u8]) -> Option<TsigRecord> {
    let start = last_record_offset(msg)?;
    let (key_name, pos) = read_name(msg, start)?;
    if be16(msg, pos)? != TYPE_TSIG {
        return None;
    }
    let rdlen = usize::from(be16(msg, pos + 8)?);
    let rdata = pos + 10;
    if rdata + rdlen != msg.len() {
        return None;
    }
    let (algorithm, mut p) = read_name(msg, rdata)?;
    let time = msg
        .get(p..p + 6)?
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    p += 6;
    let fudge = be16(msg, p)?;
    let mac_len = usize::from(be16(msg, p + 2)?);
    p += 4;
    let mac = msg.get(p..p + mac_len)?.to_vec();
    p += mac_len;
    let original_id = be16(msg, p)?;
    let error = be16(msg, p + 2)?;
    let other_len = usize::from(be16(msg, p + 4)?);
    p += 6;
    let other = msg.get(p..p + other_len)?.to_vec();
    if p + other_len != msg.len() {
        return None;
    }
    Some(TsigRecord {
        start,
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// The message as it was signed: without its TSIG record, ARCOUNT one less and the
/// original id.
pub fn strip(msg: &[u8], rr: &TsigRecord) -> Vec<u8> {
    let mut out = msg[..rr.start].to_vec();
    if out.len() >= 12 {
        out[0..2].copy_from_slice(&rr.original_id.to_be_bytes());
        let ar = u16::from_be_bytes([out[10], out[11]]).saturating_sub(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    out
}

/// A name in canonical wire form (lowercase, uncompressed).
fn canonical(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

fn time48(time: u64) -> [u8; 6] {
    let b = time.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn algorithm_name() -> Name {
    Name::from_ascii(ALGORITHM).unwrap_or_else(|_| Name::root())
}

/// The TSIG variables of a full (first-message) MAC.
fn variables(key: &Name, time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
    let mut v = canonical(key);
    v.extend_from_slice(&CLASS_ANY.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&canonical(&algorithm_name()));
    v.extend_from_slice(&time48(time));
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&u16::try_from(other.len()).unwrap_or(0).to_be_bytes());
    v.extend_from_slice(other);
    v
}

fn len_prefixed(mac: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(mac.len()).unwrap_or(0).to_be_bytes().to_vec();
    v.extend_from_slice(mac);
    v
}

/// The TSIG record bytes.
impl Key {
    /// Bytes the TSIG record of a signed response adds to the message: what a
    /// response must leave free under the UDP size limit (RFC 8945 §5.3).
    pub fn record_len(&self) -> usize {
        record(&self.name, 0, &[0u8; 32], 0, 0).len()
    }
}

fn record(key: &Name, time: u64, mac: &[u8], original_id: u16, error: u16) -> Vec<u8> {
    let mut rdata = canonical(&algorithm_name());
    rdata.extend_from_slice(&time48(time));
    rdata.extend_from_slice(&FUDGE.to_be_bytes());
    rdata.extend_from_slice(&len_prefixed(mac));
    rdata.extend_from_slice(&original_id.to_be_bytes());
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    let mut rr = canonical(key);
    rr.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    rr.extend_from_slice(&CLASS_ANY.to_be_bytes());
    rr.extend_from_slice(&0u32.to_be_bytes());
    rr.extend_from_slice(&u16::try_from(rdata.len()).unwrap_or(0).to_be_bytes());
    rr.extend_from_slice(&rdata);
    rr
}

/// Appends a TSIG record to `msg` and bumps ARCOUNT.
fn append(mut msg: Vec<u8>, rr: &[u8]) -> Result<Vec<u8>, TsigError> {
    if msg.len() < 12 {
        return Err(TsigError::Malformed);
    }
    let ar = u16::from_be_bytes([msg[10], msg[11]])
        .checked_add(1)
        .ok_or(TsigError::Malformed)?;
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    msg.extend_from_slice(rr);
    Ok(msg)
}

fn mac(key: &Key, parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&key.hmac);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a request; returns the signed bytes and the MAC (needed to verify the answer).
pub fn sign_request(key: &Key, msg: Vec<u8>, time: u64) -> Result<(Vec<u8>, Vec<u8>), TsigError> {
    let id = be16(&msg, 0).ok_or(TsigError::Malformed)?;
    let m = mac(key, &[&msg, &variables(&key.name, time, FUDGE, 0, &[])]);
    let signed = append(msg, &record(&key.name, time, &m, id, 0))?;
    Ok((signed, m))
}

/// Verifies a signed request with `key`; returns its MAC (the response is signed
/// over it) or the TSIG error code to answer with.
pub fn verify_request(key: &Key, msg: &[u8], rr: &TsigRecord, time: u64) -> Result<Vec<u8>, u16> {
    if rr.algorithm.to_lowercase() != algorithm_name() || rr.key_name.to_lowercase() != key.name {
        return Err(BADKEY);
    }
    let signed = strip(msg, rr);
    let vars = variables(&key.name, rr.time, rr.fudge, rr.error, &rr.other);
    let mut data = signed;
    data.extend_from_slice(&vars);
    if rr.mac.len() != 32 || hmac::verify(&key.hmac, &data, &rr.mac).is_err() {
        return Err(BADSIG);
    }
    if time.abs_diff(rr.time) > u64::from(rr.fudge) {
        return Err(BADTIME);
    }
    Ok(rr.mac.clone())
}

/// Verifies a signed request with `key` or, when that fails on the MAC, with the
/// secret `key` replaced while it is still valid at `time`. Returns the key that
/// verified (the answer is signed with it) and the request MAC, or the TSIG error.
pub fn verify_request_rotated<'k>(
    key: &'k Key,
    msg: &[u8],
    rr: &TsigRecord,
    time: u64,
) -> Result<(&'k Key, Vec<u8>), u16> {
    match verify_request(key, msg, rr, time) {
        Ok(mac) => Ok((key, mac)),
        Err(BADSIG) => match key.previous(time) {
            Some(old) => verify_request(old, msg, rr, time).map(|mac| (old, mac)),
            None => Err(BADSIG),
        },
        Err(code) => Err(code),
    }
}

/// An unsigned error answer: `response` (already NOTAUTH) with a TSIG record that
/// carries `error` and no MAC (RFC 8945 §5.3.2).
pub fn error_response(response: Vec<u8>, rr: &TsigRecord, error: u16) -> Vec<u8> {
    let tsig = record(&rr.key_name, now(), &[], rr.original_id, error);
    append(response.clone(), &tsig).unwrap_or(response)
}

/// Signs the messages of one response (a single answer or a transfer stream).
#[derive(Debug)]
pub struct ResponseSigner<'k> {
    key: &'k Key,
    prior_mac: Vec<u8>,
    first: bool,
    time: u64,
}

impl<'k> ResponseSigner<'k> {
    /// A signer for the answer to a request whose MAC was `request_mac`.
    pub fn new(key: &'k Key, request_mac: Vec<u8>, time: u64) -> Self {
        Self {
            key,
            prior_mac: request_mac,
            first: true,
            time,
        }
    }

    /// Signs the next message of the response.
    pub fn sign(&mut self, msg: Vec<u8>) -> Result<Vec<u8>, TsigError> {
        let id = be16(&msg, 0).ok_or(TsigError::Malformed)?;
        let prior = len_prefixed(&self.prior_mac);
        let m = if self.first {
            let vars = variables(&self.key.name, self.time, FUDGE, 0, &[]);
            mac(self.key, &[&prior, &msg, &vars])
        } else {
            let mut timers = time48(self.time).to_vec();
            timers.extend_from_slice(&FUDGE.to_be_bytes());
            mac(self.key, &[&prior, &msg, &timers])
        };
        self.first = false;
        let out = append(msg, &record(&self.key.name, self.time, &m, id, 0))?;
        self.prior_mac = m;
        Ok(out)
    }
}

/// Verifies the messages of a response to a request we signed, including transfer
/// streams where only some messages carry a TSIG record (RFC 8945 §5.3.1).
#[derive(Debug)]
pub struct ResponseVerifier<'k> {
    key: &'k Key,
    prior_mac: Vec<u8>,
    pending: Vec<u8>,
    first: bool,
    unsigned_run: usize,
}

impl<'k> ResponseVerifier<'k> {
    /// A verifier for answers to a request signed with MAC `request_mac`.
    pub fn new(key: &'k Key, request_mac: Vec<u8>) -> Self {
        Self {
            key,
            prior_mac: request_mac,
            pending: Vec::new(),
            first: true,
            unsigned_run: 0,
        }
    }

    /// Checks one received message. The first must be signed; later ones may be
    /// unsigned for up to 99 messages in a row.
    pub fn verify(&mut self, msg: &[u8]) -> Result<(), TsigError> {
        let Some(rr) = find(msg) else {
            if self.first || self.unsigned_run >= 99 {
                return Err(TsigError::Unsigned);
            }
            self.unsigned_run += 1;
            self.pending.extend_from_slice(msg);
            return Ok(());
        };
        if rr.error != 0 {
            return Err(TsigError::Verify(rr.error));
        }
        if rr.key_name.to_lowercase() != self.key.name {
            return Err(TsigError::Verify(BADKEY));
        }
        let stripped = strip(msg, &rr);
        let prior = len_prefixed(&self.prior_mac);
        let tail = if self.first {
            variables(&self.key.name, rr.time, rr.fudge, rr.error, &rr.other)
        } else {
            let mut timers = time48(rr.time).to_vec();
            timers.extend_from_slice(&rr.fudge.to_be_bytes());
            timers
        };
        let mut data = prior;
        data.extend_from_slice(&self.pending);
        data.extend_from_slice(&stripped);
        data.extend_from_slice(&tail);
        if rr.mac.len() != 32 || hmac::verify(&self.key.hmac, &data, &rr.mac).is_err() {
            return Err(TsigError::Verify(BADSIG));
        }
        if now().abs_diff(rr.time) > u64::from(rr.fudge) {
            return Err(TsigError::Verify(BADTIME));
        }
        self.prior_mac = rr.mac;
        self.pending.clear();
        self.first = false;
        self.unsigned_run = 0;
        Ok(())
    }

    /// Whether the stream ended on a verified (signed) message.
    pub fn complete(&self) -> bool {
        !self.first && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, OpCode, Query};
    use hickory_proto::rr::RecordType;

    fn key() -> Key {
        Key::new("xfr.example.", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0").expect("key")
    }

    fn query() -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.add_query(Query::query(
            Name::from_ascii("example.com.").expect("name"),
            RecordType::AXFR,
        ));
        m.to_vec().expect("encode")
    }

    #[test]
    fn request_round_trip_and_tamper() {
        let k = key();
        let (signed, m) = sign_request(&k, query(), now()).expect("sign");
        let rr = find(&signed).expect("tsig found");
        assert_eq!(rr.key_name, *k.name());
        assert_eq!(verify_request(&k, &signed, &rr, now()), Ok(m.clone()));
        let mut bad = signed.clone();
        bad[13] ^= 1;
        let rr = find(&bad).expect("tsig");
        assert_eq!(verify_request(&k, &bad, &rr, now()), Err(BADSIG));
        let other = Key::new("xfr.example.", "hmac-sha256", "b3RoZXI=").expect("key");
        let rr = find(&signed).expect("tsig");
        assert_eq!(verify_request(&other, &signed, &rr, now()), Err(BADSIG));
        assert_eq!(verify_request(&k, &signed, &rr, now() + 1000), Err(BADTIME));
        assert!(find(&query()).is_none());
        // Hickory still parses the signed message's header and question.
        let msg = Message::from_vec(&strip(&signed, &find(&signed).expect("tsig"))).expect("p");
        assert_eq!(msg.metadata.op_code, OpCode::Query);
    }

    #[test]
    fn stream_signing_verifies_with_unsigned_middle() {
        let k = key();
        let (_, request_mac) = sign_request(&k, query(), now()).expect("sign");
        let mut signer = ResponseSigner::new(&k, request_mac.clone(), now());
        let msgs: Vec<Vec<u8>> = (0..3).map(|_| query()).collect();
        let a = signer.sign(msgs[0].clone()).expect("sign");
        let mut verifier = ResponseVerifier::new(&k, request_mac.clone());
        verifier.verify(&a).expect("first");
        let b = signer.sign(msgs[1].clone()).expect("sign");
        verifier.verify(&b).expect("second");
        assert!(verifier.complete());
        // Wrong request MAC fails.
        let mut wrong = ResponseVerifier::new(&k, vec![0; 32]);
        assert_eq!(wrong.verify(&a), Err(TsigError::Verify(BADSIG)));
        let mut unsigned_first = ResponseVerifier::new(&k, request_mac);
        assert_eq!(unsigned_first.verify(&msgs[0]), Err(TsigError::Unsigned));
    }

    #[test]
    fn a_rotated_key_accepts_the_previous_secret_until_it_expires() {
        let old = Key::new(
            "xfr.example.",
            "hmac-sha256",
            "b2xkLXNlY3JldC1vbGQtc2VjcmV0",
        )
        .expect("k");
        let now = now();
        let current = key()
            .with_previous("b2xkLXNlY3JldC1vbGQtc2VjcmV0", now + 60)
            .expect("key");
        let (signed, _) = sign_request(&old, query(), now).expect("sign");
        let rr = find(&signed).expect("tsig");
        // The current key alone refuses it; with its previous secret it verifies,
        // and the answer is signed with the old secret (what the client checks).
        assert_eq!(verify_request(&current, &signed, &rr, now), Err(BADSIG));
        let (used, mac) = verify_request_rotated(&current, &signed, &rr, now).expect("grace");
        let mut signer = ResponseSigner::new(used, mac.clone(), now);
        let answer = signer.sign(query()).expect("sign");
        ResponseVerifier::new(&old, mac)
            .verify(&answer)
            .expect("old key verifies the answer");
        // The current secret still works.
        let (signed_new, _) = sign_request(&key(), query(), now).expect("sign");
        let rr_new = find(&signed_new).expect("tsig");
        let (used, _) = verify_request_rotated(&current, &signed_new, &rr_new, now).expect("new");
        assert!(std::ptr::eq(used, &current));
        // After the grace period the old secret is refused.
        let later = now + 61;
        let (late, _) = sign_request(&old, query(), later).expect("sign");
        let rr = find(&late).expect("tsig");
        assert_eq!(
            verify_request_rotated(&current, &late, &rr, later).map(|_| ()),
            Err(BADSIG)
        );
        assert!(current.previous(later).is_none());
        // A different key name is still BADKEY, not retried.
        let other = Key::new(
            "other.example.",
            "hmac-sha256",
            "b2xkLXNlY3JldC1vbGQtc2VjcmV0",
        )
        .expect("k");
        let (s, _) = sign_request(&other, query(), now).expect("sign");
        let rr = find(&s).expect("tsig");
        assert_eq!(
            verify_request_rotated(&current, &s, &rr, now).map(|_| ()),
            Err(BADKEY)
        );
    }

    #[test]
    fn keys_validate() {
        assert!(Key::new("k.", "hmac-md5", "c2VjcmV0").is_err());
        assert!(Key::new("k.", "hmac-sha256", "!!!").is_err());
        assert!(format!("{:?}", key()).contains("xfr.example."));
        assert!(!format!("{:?}", key()).contains("c2Vj"));
    }
}
