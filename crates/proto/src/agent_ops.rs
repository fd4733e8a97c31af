//! The operations channel: questions the controller asks one agent and the agent
//! answers (today: a site's logs on a web server; later the panel's file manager).
//!
//! Agents dial out, the controller never dials in: an agent long-polls
//! `GET /v1/agent/ops?wait=SECONDS` (mutual TLS, like its config poll) and gets the
//! questions waiting for it, then `POST`s each answer to `/v1/agent/ops/{id}`. So a
//! server behind NAT or a firewall that only lets it reach the controller still
//! answers, and no second port or second identity is needed.

use serde::{Deserialize, Serialize};

/// Where an agent polls for questions (`?wait=SECONDS`, at most [`MAX_WAIT_SECS`]).
pub const OPS_PATH: &str = "/v1/agent/ops";

/// The longest a poll is held open before it answers with no question.
pub const MAX_WAIT_SECS: u64 = 30;

/// At most this many log lines travel in one answer.
pub const MAX_LOG_LINES: u32 = 5_000;

/// One question for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    /// Answer to `/v1/agent/ops/{id}`.
    pub id: u64,
    /// What is asked.
    pub op: Op,
}

/// What the controller may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The newest lines of one site's logs on this server.
    SiteLogs(SiteLogsQuery),
}

/// A site's logs on one web server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLogsQuery {
    /// The site's primary host name (A-labels).
    pub domain: String,
    /// Which logs (empty: all).
    #[serde(default)]
    pub kinds: Vec<LogKind>,
    /// Only lines at or after this time (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// At most this many lines, the newest (≤ [`MAX_LOG_LINES`]).
    pub limit: u32,
}

/// One of a site's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// Requests (NCSA combined format).
    Access,
    /// The web engine's errors about the site (PHP unreachable, refused paths …).
    Error,
    /// What PHP wrote to its error log (warnings, fatal errors, `error_log()`).
    Php,
    /// The site's cron runs.
    Cron,
}

impl LogKind {
    /// Every kind, in file-name order.
    pub const ALL: [LogKind; 4] = [Self::Access, Self::Error, Self::Php, Self::Cron];

    /// The name used in file names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Error => "error",
            Self::Php => "php",
            Self::Cron => "cron",
        }
    }
}

impl std::str::FromStr for LogKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a log; the logs are access, error, php and cron"))
    }
}

/// An agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum OpAnswer {
    /// The lines of [`Op::SiteLogs`].
    SiteLogs(SiteLogsAnswer),
    /// The question could not be answered (an engine that does not know it, a read
    /// error); `message` says why.
    Error {
        /// For people.
        message: String,
    },
}

/// Lines of one server, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLogsAnswer {
    /// The lines.
    pub lines: Vec<LogLine>,
    /// More lines matched than `limit` (the oldest were left out).
    #[serde(default)]
    pub truncated: bool,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When (milliseconds since the Unix epoch; the line's own time stamp).
    pub at_ms: i64,
    /// Which log.
    pub kind: LogKind,
    /// The line as written (without its newline).
    pub text: String,
}
