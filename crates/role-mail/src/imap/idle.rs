//! IDLE (RFC 2177): the session waits on its folder's notifier (woken by delivery
//! and by other sessions' STORE, EXPUNGE, COPY, MOVE and APPEND) and on the
//! client's `DONE`, sending EXISTS / EXPUNGE / FETCH updates as they happen. The
//! wait on the client is cancel-safe ([`crate::conn::Conn::wait_input`]), so a
//! notification never loses input.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{CommandContinuationRequest, Response};

use super::{Next, Session, IDLE_LOGOUT, MAX_LINE};

/// IDLE.
pub(crate) async fn idle(s: &mut Session, tag: &Tag<'_>) -> Next {
    if let Ok(c) = CommandContinuationRequest::basic(None, "idling") {
        s.send(&Response::CommandContinuationRequest(c));
    }
    let slot = s
        .selected
        .as_ref()
        .map(|sel| s.shared.imap.slot(&sel.folder.dir));
    s.refresh(true);
    loop {
        if s.conn.flush().await.is_err() {
            return Next::Close;
        }
        if s.conn.has_pending_input() {
            break;
        }
        let woke = match &slot {
            Some(slot) => {
                let notified = slot.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // a change between the refresh above and `enable` is caught here
                s.refresh(true);
                if s.conn.flush().await.is_err() {
                    return Next::Close;
                }
                tokio::select! {
                    _ = &mut notified => true,
                    r = s.conn.wait_input(IDLE_LOGOUT) => {
                        if r.is_err() { return Next::Close; }
                        false
                    }
                }
            }
            None => {
                if s.conn.wait_input(IDLE_LOGOUT).await.is_err() {
                    return Next::Close;
                }
                false
            }
        };
        if woke {
            s.refresh(true);
        } else {
            break;
        }
    }
    let line = match s.conn.read_line(MAX_LINE, IDLE_LOGOUT).await {
        Ok(l) => l,
        Err(_) => return Next::Close,
    };
    if line.bytes.eq_ignore_ascii_case(b"DONE") {
        s.ok(tag, None, "IDLE terminated");
    } else {
        s.bad(tag, "expected DONE");
    }
    Next::Continue
}
