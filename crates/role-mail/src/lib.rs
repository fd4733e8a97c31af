//! hostplane's mail engine (`mail` role).
//!
//! - [`plan`]: pure render of the controller's `MailConfig` into a [`Plan`]
//!   (hosted domains, recipients, aliases, accounts, where each address's mail goes).
//! - [`conn`]: line-oriented connection (limits, timeouts, bare CR/LF detection,
//!   pipelining-friendly buffering, STARTTLS upgrade).
//! - [`smtp`]: the SMTP session for the MX (25) and submission (587/465), one file
//!   per command family.
//! - [`maildir`]: durable Maildir++ delivery and the POP3 view of a mailbox.
//! - [`queue`] and [`client`]: the durable relay queue of a secondary MX and the
//!   SMTP client that hands mail to the primary; [`dedup`]: the primary's
//!   suppression of a copy relayed twice.
//! - [`pop3`]: POP3 with STLS (110) and over TLS (995).
//! - [`imap`]: IMAP4rev1 with STARTTLS (143) and over TLS (993), UIDs persisted
//!   per folder; wire format by `imap-codec`, MIME by `mail-parser`.
//! - [`dns`], [`dkim`], [`dsn`]: outbound delivery's MX lookup, DKIM signing and
//!   delivery status notifications.
//! - [`accounts`], [`tls`]: password checks, TLS acceptor and opportunistic client.
//! - [`server`]: shared state and accept loops; [`engine`]: the running server and
//!   the agent adapter ([`start_engine`]).
//! - [`sendlimit`]: outgoing limits on submission (messages per hour per mailbox
//!   and domain).
//! - [`repl`]: mailboxes replicated to the cluster's other mail servers, one
//!   fenced writer at a time (issue 16).
//! - [`harness`]: in-memory session driver for protocol tests.
//!
//! SMTP and POP3 commands are parsed by hand (the grammar we accept is small and
//! every branch is tested) rather than with smtp-proto; IMAP's grammar is not small,
//! so IMAP uses `imap-codec`.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod client;
pub mod conn;
pub mod dedup;
pub mod dkim;
pub mod dns;
pub mod dsn;
pub mod engine;
pub mod harness;
pub mod imap;
pub mod maildir;
pub mod plan;
pub mod pop3;
pub mod queue;
pub mod repl;
pub mod sendlimit;
pub mod server;
pub mod smtp;
pub mod tls;
pub mod verify;

pub use engine::{
    start_engine, start_engine_with_handle, Addrs, Listeners, MailHandle, MailServer,
};
pub use plan::{Plan, Target};
pub use queue::QueueEntry;
pub use server::Limits;
