//! CAPABILITY, STARTTLS, LOGIN and AUTHENTICATE PLAIN (with SASL-IR, RFC 4959).
//!
//! When the server has a certificate, plaintext logins wait for TLS: before
//! STARTTLS the capability list says `LOGINDISABLED` and has no `AUTH=` (RFC 3501
//! §6.2.3). Logins go through [`crate::accounts::login`] (the shared throttle,
//! argon2 via `passhash`); a site's submission login never opens a mailbox. After
//! a login the user's INBOX and the special-use folders exist.

use base64::Engine;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Response,
};

use super::{names, uidlist, Next, Session, User, MAX_AUTH_FAILURES, MAX_LINE};
use crate::accounts;

/// Whether a cleartext login must wait for STARTTLS.
fn must_starttls(s: &Session) -> bool {
    !s.tls && s.shared.live().tls.is_some()
}

/// The capability list for the session's state.
pub(crate) fn capabilities(s: &Session) -> Vec1<Capability<'static>> {
    let other = |c: &str| Capability::try_from(c.to_string()).ok();
    let mut caps = vec![Capability::Imap4Rev1];
    if s.user.is_none() {
        if must_starttls(s) {
            caps.push(Capability::StartTls);
            caps.push(Capability::LoginDisabled);
        } else {
            caps.push(Capability::Auth(AuthMechanism::Plain));
        }
    }
    caps.extend([
        Capability::SaslIr,
        Capability::LiteralPlus,
        Capability::Id,
        Capability::Enable,
        Capability::Idle,
        Capability::Namespace,
        Capability::Unselect,
        Capability::UidPlus,
        Capability::Move,
        Capability::Quota,
        Capability::Utf8(Utf8Kind::Accept),
    ]);
    caps.extend(other("SPECIAL-USE"));
    caps.extend(other("QUOTA=RES-STORAGE"));
    Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
}

/// CAPABILITY.
pub(crate) fn capability(s: &mut Session, tag: &Tag<'_>) {
    let caps = capabilities(s);
    s.data(Data::Capability(caps));
    s.ok(tag, None, "capabilities listed");
}

/// STARTTLS.
pub(crate) async fn starttls(s: &mut Session, tag: &Tag<'_>) -> Next {
    if s.tls {
        s.bad(tag, "TLS already active");
        return Next::Continue;
    }
    let Some(acceptor) = s.shared.live().tls.clone() else {
        s.no(tag, None, "TLS not available");
        return Next::Continue;
    };
    s.ok(tag, None, "begin TLS negotiation now");
    if s.conn.upgrade(&acceptor, super::IDLE_LOGOUT).await.is_err() {
        return Next::Close;
    }
    s.tls = true;
    Next::Continue
}

/// LOGIN.
pub(crate) async fn login(s: &mut Session, tag: &Tag<'_>, user: &[u8], password: &[u8]) -> Next {
    if must_starttls(s) {
        s.no(tag, Some(privacy()), "use STARTTLS first");
        return Next::Continue;
    }
    let user = String::from_utf8_lossy(user).into_owned();
    let password = String::from_utf8_lossy(password).into_owned();
    finish_login(s, tag, &user, &password).await
}

fn privacy() -> Code<'static> {
    super::code("PRIVACYREQUIRED")
}

/// AUTHENTICATE PLAIN, with the initial response inline (SASL-IR) or after a `+`.
pub(crate) async fn authenticate(
    s: &mut Session,
    tag: &Tag<'_>,
    mechanism: &AuthMechanism<'_>,
    initial: Option<Vec<u8>>,
) -> Next {
    if must_starttls(s) {
        s.no(tag, Some(privacy()), "use STARTTLS first");
        return Next::Continue;
    }
    if *mechanism != AuthMechanism::Plain {
        s.no(tag, None, "only PLAIN is supported");
        return Next::Continue;
    }
    let data = match initial {
        Some(d) => d,
        None => {
            s.send(&Response::CommandContinuationRequest(
                CommandContinuationRequest::Base64(Vec::new().into()),
            ));
            let line = match s.conn.read_line(MAX_LINE, super::IDLE_LOGOUT).await {
                Ok(l) => l,
                Err(_) => return Next::Close,
            };
            let mut bytes = line.bytes.clone();
            bytes.extend_from_slice(b"\r\n");
            match imap_codec::AuthenticateDataCodec::default().decode(&bytes) {
                Ok((_, imap_codec::imap_types::auth::AuthenticateData::Continue(d))) => {
                    d.declassify().to_vec()
                }
                Ok(_) => {
                    s.bad(tag, "authentication cancelled");
                    return Next::Continue;
                }
                Err(_) => {
                    // `=` alone is an empty response
                    if line.bytes == b"=" {
                        Vec::new()
                    } else if let Ok(d) =
                        base64::engine::general_purpose::STANDARD.decode(&line.bytes)
                    {
                        d
                    } else {
                        s.bad(tag, "bad base64");
                        return Next::Continue;
                    }
                }
            }
        }
    };
    // authzid NUL authcid NUL password
    let mut parts = data.split(|&b| b == 0);
    let (authz, authc, pw) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(z), Some(c), Some(p), None) => (z, c, p),
        _ => {
            s.bad(tag, "malformed PLAIN response");
            return Next::Continue;
        }
    };
    if !authz.is_empty() && authz != authc {
        s.no(
            tag,
            Some(super::code("AUTHORIZATIONFAILED")),
            "no proxy logins",
        );
        return Next::Continue;
    }
    let user = String::from_utf8_lossy(authc).into_owned();
    let password = String::from_utf8_lossy(pw).into_owned();
    finish_login(s, tag, &user, &password).await
}

async fn finish_login(s: &mut Session, tag: &Tag<'_>, user: &str, password: &str) -> Next {
    let plan = s.shared.live().plan.clone();
    let outcome =
        accounts::login(&s.shared.logins, s.peer.ip(), plan.clone(), user, password).await;
    let address = match outcome {
        accounts::Login::Ok(a) if model::sitemail::site_of_login(&a).is_none() => a,
        accounts::Login::Ok(_) | accounts::Login::Wrong => {
            s.failures += 1;
            s.no(
                tag,
                Some(super::code("AUTHENTICATIONFAILED")),
                "invalid credentials",
            );
            return if s.failures < MAX_AUTH_FAILURES {
                Next::Continue
            } else {
                Next::Close
            };
        }
        accounts::Login::Throttled(secs) => {
            s.failures += 1;
            s.no(
                tag,
                Some(super::code("UNAVAILABLE")),
                &format!("too many failed logins; try again in {secs} s"),
            );
            return if s.failures < MAX_AUTH_FAILURES {
                Next::Continue
            } else {
                Next::Close
            };
        }
    };
    let Some((local, domain)) = crate::plan::split_address(&address) else {
        s.no(tag, None, "bad mailbox");
        return Next::Continue;
    };
    let root = crate::maildir::maildir_path(&s.shared.state_dir, &domain, &local);
    // only a server that writes creates the special-use folders (a follower gets
    // them from the writer; creating them here would fork their UIDVALIDITY)
    let r = if s.shared.repl.check().is_ok() {
        prepare(&root)
    } else {
        crate::maildir::ensure(&root)
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, %address, "imap: cannot prepare mailbox");
        s.no(tag, Some(super::code("SERVERBUG")), "mailbox unavailable");
        return Next::Continue;
    }
    let quota = plan.quota(&domain, &local);
    tracing::debug!(%address, peer = %s.peer, "imap login");
    s.user = Some(User { root, quota });
    let caps = capabilities(s);
    s.ok(tag, Some(Code::Capability(caps)), "logged in");
    Next::Continue
}

/// Create INBOX and the special-use folders (idempotent), subscribed.
fn prepare(root: &std::path::Path) -> std::io::Result<()> {
    crate::maildir::ensure(root)?;
    let mut subs = super::mailbox::read_subscriptions(root);
    let mut changed = false;
    for (name, _) in names::SPECIAL {
        let dir = root.join(format!(".{}", names::encode(name)));
        if !dir.join("cur").exists() {
            uidlist::create_folder(&dir, true)?;
            if subs.insert(name.to_string()) {
                changed = true;
            }
        }
    }
    if changed {
        super::mailbox::write_subscriptions(root, &subs)?;
    }
    Ok(())
}
