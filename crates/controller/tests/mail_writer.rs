//! The writer of a mail cluster's mailboxes through the placement path (issue 16):
//! the first pass makes the primary the writer (epoch 1); draining it moves the
//! writer to the secondary (epoch 2, a `mail.writer_move` event, both servers'
//! configs name the new writer); the heartbeat grants the mail lease only to the
//! writer, only once it applied its current config, and never again to the old
//! one; the primary back is not handed the lease until its mail report says it
//! caught up with the current epoch, then takes it back (epoch 3), and starts
//! writing as soon as the secondary reports it follows epoch 3.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{default_clusters, Api, Server};
use proto::agent_v1::{DesiredConfig, MailWriter, RoleConfig, CONFIG_PATH, HEARTBEAT_PATH};
use serde_json::{json, Value};

type Mail = common::Joined;

/// A mail agent's heartbeat with `applied` and, if given, the epoch its report
/// says it caught up with; the mail lease granted.
async fn beat(m: &Mail, applied: i64, caught_up: Option<u64>) -> Option<u64> {
    let mut hb = json!({
        "applied_revision": applied,
        "engines": [{"name": "mail", "state": "ok", "detail": "test"}],
        "agent_version": "test",
        "report": {"role": "mail", "queue": []},
    });
    if let Some(e) = caught_up {
        hb["report"]["caught_up_epoch"] = json!(e);
    }
    let ack: Value = m
        .http
        .post(format!("{}{HEARTBEAT_PATH}", m.url))
        .json(&hb)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ack["cron_lease_secs"].is_null(), "{ack}");
    ack["mail_lease_secs"].as_u64()
}

async fn config(m: &Mail) -> DesiredConfig {
    let res = m
        .http
        .get(format!("{}{CONFIG_PATH}?after=0", m.url))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

/// The writer this server's config names, once `holder` holds it.
async fn writer_when(m: &Mail, holder: &str) -> (i64, MailWriter) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = config(m).await;
        let RoleConfig::Mail(mail) = doc.role else {
            panic!("not a mail config")
        };
        if let Some(w) = mail.writer.filter(|w| w.holder.as_deref() == Some(holder)) {
            return (doc.revision, w);
        }
        assert!(
            Instant::now() < deadline,
            "{holder} never became the writer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Heartbeats of `m` with its current revision until one is granted the lease
/// (a build landing between reading the config and the heartbeat leaves it
/// behind again, rightly without a lease).
async fn lease(m: &Mail, caught_up: Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let applied = config(m).await.revision;
        if let Some(s) = beat(m, applied, caught_up).await {
            return s;
        }
        assert!(Instant::now() < deadline, "no lease for the writer");
    }
}

/// Heartbeats of `m` every 300 ms with its current revision, reporting the epoch
/// in `caught` (0: none), so it stays `up` between the test's own heartbeats.
fn keep_beating(m: Arc<Mail>, caught: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let applied = config(&m).await.revision;
            let e = caught.load(Ordering::SeqCst);
            beat(&m, applied, (e > 0).then_some(e)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// The cluster's writer and epoch as `cluster show` has them.
async fn shown(admin: &Api) -> (Value, u64) {
    let c = admin.get("/v1/clusters/mail-1").await.expect(200);
    (
        c["mail_writer"]["server"].clone(),
        c["mail_writer"]["epoch"].as_u64().unwrap_or(0),
    )
}

async fn moves(admin: &Api) -> Vec<(Value, Value, u64, String)> {
    admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == "mail.writer_move")
        .map(|e| {
            (
                e["detail"]["from"].clone(),
                e["detail"]["to"].clone(),
                e["detail"]["epoch"].as_u64().unwrap(),
                e["detail"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_mail_writer_fails_over_is_leased_to_it_alone_and_handed_back() {
    let srv = Server::start_with(|c| c.health.mail_lease_s = 7).await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let mx1 = Arc::new(common::join_agent(&srv, &admin, "mail-1", "mx1").await);
    let mx2 = Arc::new(common::join_agent_in(&srv, &admin, "mail-1", "mx2", "FR").await);
    // Both stay `up` throughout (a silent one would rightly fail over), each
    // reporting the epoch it caught up with.
    let (caught1, caught2) = (Arc::new(AtomicU64::new(1)), Arc::new(AtomicU64::new(1)));
    let beating = [
        keep_beating(mx1.clone(), caught1.clone()),
        keep_beating(mx2.clone(), caught2.clone()),
    ];

    // The first pass (a health tick) makes the primary the writer.
    let (rev1, w) = writer_when(&mx2, "mx1").await;
    assert_eq!(w.epoch, 1);
    assert_eq!(shown(&admin).await, (json!("mx1"), 1));
    let RoleConfig::Mail(m2) = config(&mx2).await.role else {
        panic!()
    };
    assert_eq!(m2.peers[0].server, "mx1");
    assert_eq!(m2.peers[0].replication.as_deref(), Some("127.0.0.1:7445"));
    // The writer gets the lease once it applied its config; the other never.
    assert_eq!(beat(&mx1, 0, None).await, None, "behind its config");
    assert_eq!(lease(&mx1, Some(1)).await, 7);
    assert_eq!(
        beat(&mx2, rev1.max(config(&mx2).await.revision), Some(1)).await,
        None
    );

    // Draining mx1 moves the writer to mx2: epoch 2, one event, a handover one
    // lease (7 s) and the clock margin ahead.
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    caught2.store(2, Ordering::SeqCst); // the new writer reports its own epoch
    admin
        .post("/v1/servers/mx1/drain", json!({}))
        .await
        .expect(200);
    assert_eq!(shown(&admin).await, (json!("mx2"), 2));
    let (_, w) = writer_when(&mx1, "mx2").await;
    assert_eq!(w.epoch, 2);
    assert!(
        w.not_before >= before + 7 && w.not_before <= before + 7 + 30,
        "{} vs {before}",
        w.not_before
    );
    // The old writer, even up to date, gets no lease any more; the new one does.
    // (mx1 reports epoch 1 caught up: it has not applied mx2's stream yet.)
    let applied1 = config(&mx1).await.revision;
    assert_eq!(beat(&mx1, applied1, Some(1)).await, None);
    assert_eq!(lease(&mx2, Some(2)).await, 7);

    // mx1 back: it is not handed the lease while it has not caught up …
    admin
        .post("/v1/servers/mx1/undrain", json!({}))
        .await
        .expect(200);
    for _ in 0..3 {
        let applied = config(&mx1).await.revision;
        assert_eq!(beat(&mx1, applied, Some(1)).await, None);
        tokio::time::sleep(Duration::from_millis(1100)).await; // a health tick
    }
    assert_eq!(shown(&admin).await, (json!("mx2"), 2), "no hand-back yet");
    // … and takes it back once its report says it applied epoch 2's stream.
    caught1.store(2, Ordering::SeqCst);
    let (_, w) = writer_when(&mx2, "mx1").await;
    assert_eq!(w.epoch, 3);
    let waited = w.not_before;
    caught1.store(3, Ordering::SeqCst);
    assert_eq!(lease(&mx1, Some(3)).await, 7);
    let applied2 = config(&mx2).await.revision;
    assert_eq!(beat(&mx2, applied2, Some(3)).await, None);

    // mx2, the previous holder, reports it follows epoch 3 (it writes no more):
    // mx1 need not wait out mx2's last lease, its start is brought forward. (On a
    // machine so slow that the wait ran out first there is nothing to shorten.)
    caught2.store(3, Ordering::SeqCst);
    let started = loop {
        let (_, w) = writer_when(&mx1, "mx1").await;
        if w.not_before < waited {
            break true;
        }
        if time::OffsetDateTime::now_utc().unix_timestamp() >= waited {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if started {
        let ev: Vec<Value> = admin
            .list_all("/v1/events?limit=1000")
            .await
            .into_iter()
            .filter(|e| e["action"] == "mail.writer_start" && e["detail"]["epoch"] == json!(3))
            .collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["detail"]["previous"], json!("mx2"));
        assert_eq!(ev[0]["detail"]["epoch"], json!(3));
        assert_eq!(ev[0]["detail"]["instead_of"], json!(waited));
    }
    assert_eq!(
        moves(&admin).await,
        vec![
            (Value::Null, json!("mx1"), 1, "health".to_owned()),
            (json!("mx1"), json!("mx2"), 2, "drain".to_owned()),
            (json!("mx2"), json!("mx1"), 3, "health".to_owned()),
        ]
    );
    for b in beating {
        b.abort();
    }
    srv.stop().await;
}
