//! Mailboxes replicated between the mail servers of a cluster, with one fenced
//! writer at a time (issue 16 points 3 and 6).
//!
//! The controller names the writer in the config (`MailConfig::writer`: holder,
//! fencing epoch, `not_before`) and grants it a lease with heartbeat answers.
//! [`gate`] decides per write whether this server may write now; [`serve`] is
//! the replication port every server runs (mutual TLS with the agents'
//! certificates, [`tls`]); [`follow`] follows the writer, or catches up before
//! writing after a takeover; [`store`] computes and applies mailbox state;
//! [`wire`] is the protocol.
//!
//! Replication is by state, not by an operation log: a follower asks for a
//! changed mailbox's manifest (per folder UIDVALIDITY, UIDNEXT, UID, base name,
//! flags and internal date of every message) and fetches the messages it lacks.
//! The writer's change feed says which mailboxes changed (long poll); a follower
//! that was away, or too far behind the feed, compares every mailbox — which is
//! also the full resync. The durable state is the Maildirs themselves and, per
//! folder, the *base* both servers agreed on last (what tells an expunge there
//! from a message written here while this server was the writer).

pub mod follow;
pub mod gate;
pub mod serve;
pub mod store;
pub mod tls;
pub mod wire;

pub use follow::ReplConfig;
pub use gate::{Feed, Gate, Refusal};
