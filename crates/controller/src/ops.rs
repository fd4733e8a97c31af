//! The controller's side of the operations channel (`proto::agent_ops`): a request
//! handler that needs an answer from one agent ([`OpsHub::ask`]) queues a question
//! for that server and waits; the agent's long poll (`GET /v1/agent/ops`) takes
//! the server's waiting questions and its `POST /v1/agent/ops/{id}` hands the
//! answer to the waiter. Nothing is stored: a question whose agent does not answer
//! in time is dropped, and the caller reports that server as not answering.
//!
//! With several controllers, each agent polls each of them, so whichever controller
//! a customer asks reaches the servers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use model::Id;
use proto::agent_ops::{Op, OpAnswer, OpRequest};
use tokio::sync::{oneshot, Notify};

/// Questions waiting per server, at most; more are refused (a server that stopped
/// polling must not grow the controller's memory).
const MAX_WAITING: usize = 64;

/// Why a question got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpsError {
    /// The agent did not take or answer it in time (down, old, or busy).
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    /// Too many questions already wait for the server.
    #[error("the server has {MAX_WAITING} questions waiting already")]
    Busy,
}

#[derive(Default)]
struct Queue {
    asks: VecDeque<OpRequest>,
    notify: std::sync::Arc<Notify>,
}

/// Questions waiting for agents and the callers waiting for answers.
#[derive(Default)]
pub struct OpsHub {
    next: AtomicU64,
    queues: Mutex<HashMap<Id, Queue>>,
    waiting: Mutex<HashMap<u64, (Id, oneshot::Sender<OpAnswer>)>>,
}

impl std::fmt::Debug for OpsHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsHub").finish_non_exhaustive()
    }
}

impl OpsHub {
    /// Ask server `server` and wait up to `timeout` for its answer.
    pub async fn ask(&self, server: Id, op: Op, timeout: Duration) -> Result<OpAnswer, OpsError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            let q = queues.entry(server).or_default();
            if q.asks.len() >= MAX_WAITING {
                return Err(OpsError::Busy);
            }
            q.asks.push_back(OpRequest { id, op });
            q.notify.notify_one();
        }
        self.lock_waiting().insert(id, (server, tx));
        let answer = tokio::time::timeout(timeout, rx).await;
        // Whatever happened, the question is no longer wanted.
        self.lock_waiting().remove(&id);
        if let Some(q) = self
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&server)
        {
            q.asks.retain(|a| a.id != id);
        }
        match answer {
            Ok(Ok(a)) => Ok(a),
            _ => Err(OpsError::Timeout(timeout)),
        }
    }

    /// The questions waiting for `server`, waiting up to `wait` for one.
    pub async fn take(&self, server: Id, wait: Duration) -> Vec<OpRequest> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notify = {
                let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let q = queues.entry(server).or_default();
                if !q.asks.is_empty() {
                    return q.asks.drain(..).collect();
                }
                q.notify.clone()
            };
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                return Vec::new();
            }
        }
    }

    /// Hand `answer` of question `id` from `server` to its waiter; false when
    /// nobody waits for it (timed out, or not this server's question).
    pub fn answer(&self, server: Id, id: u64, answer: OpAnswer) -> bool {
        let mut waiting = self.lock_waiting();
        match waiting.get(&id) {
            Some((s, _)) if *s == server => {}
            _ => return false,
        }
        let Some((_, tx)) = waiting.remove(&id) else {
            return false;
        };
        tx.send(answer).is_ok()
    }

    fn lock_waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, (Id, oneshot::Sender<OpAnswer>)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::agent_ops::{SiteLogsAnswer, SiteLogsQuery};

    fn op() -> Op {
        Op::SiteLogs(SiteLogsQuery {
            domain: "a.example".into(),
            kinds: Vec::new(),
            since_ms: None,
            limit: 10,
        })
    }

    #[tokio::test]
    async fn a_question_reaches_its_server_and_the_answer_its_caller() {
        let hub = std::sync::Arc::new(OpsHub::default());
        let h = hub.clone();
        let agent = tokio::spawn(async move {
            let asks = h.take(7, Duration::from_secs(5)).await;
            assert_eq!(asks.len(), 1);
            // Another server cannot answer server 7's question.
            assert!(!h.answer(
                8,
                asks[0].id,
                OpAnswer::Error {
                    message: "x".into()
                }
            ));
            assert!(h.answer(7, asks[0].id, OpAnswer::SiteLogs(SiteLogsAnswer::default())));
        });
        let got = hub.ask(7, op(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(got, OpAnswer::SiteLogs(SiteLogsAnswer::default()));
        agent.await.unwrap();
    }

    #[tokio::test]
    async fn an_unanswered_question_times_out_and_is_withdrawn() {
        let hub = OpsHub::default();
        let err = hub
            .ask(7, op(), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(err, OpsError::Timeout(Duration::from_millis(50)));
        assert!(hub.take(7, Duration::from_millis(10)).await.is_empty());
    }
}
