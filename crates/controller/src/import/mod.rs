//! Bulk import (`POST /v1/import`, `hostplane import FILE`): NDJSON lines of
//! [`proto::v1_import::ImportLine`] (schema: `docs/import.md`), admins only.
//!
//! A request carries a chunk of the file and is one store transaction: every line is
//! parsed and checked with the API's own rules (model newtypes, name ownership per
//! registrable domain, plan limits, placement by the scheduler's functions) in file
//! order, so a line may refer to objects created by earlier lines. A refused line
//! writes nothing and the others go on. The checks run against the request's
//! [`view::View`] of the store: what a window of lines refers to is read in bulk
//! (a few statements per kind, `Tx::get_many_by_name` and friends), and what the
//! lines create is added to the view as they go; at the end the new objects are
//! written with one multi-row insert per kind (`Tx::create_many`, ids reserved by
//! `Tx::reserve_ids` so objects can refer to each other before they are written).
//! `dry_run` writes nothing: the CLI first sends the whole file as a dry run
//! (everything is validated before anything is written), then commits it in chunks
//! with a progress bar. Re-running resumes: an object that already exists
//! identically is skipped, one that differs is refused with the difference.
//!
//! Passwords come as hashes of any scheme `passhash` accepts (only parsed here,
//! never computed); the first right login rehashes them to argon2id
//! (`crate::rehash`).

mod accounts;
mod apply;
mod db;
mod diff;
mod services;
mod view;

use std::collections::BTreeMap;

use proto::v1_import::{ImportLine, ImportParams, ImportReport, ImportResult, ImportStatus};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

pub use diff::{diff, same_hash};

/// The largest request body (a chunk, or a whole file for the dry run).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The most lines one request may carry.
pub const MAX_LINES: usize = 1_000_000;

/// Lines whose references are read in bulk at once (a dry run of a whole file
/// reads window by window; what earlier windows created stays in the view).
const PREFETCH_WINDOW: usize = 2_000;

/// One line of the file: its number and the parsed object, or why it is unreadable.
pub type ParsedLine = (u64, Result<ImportLine, String>);

/// Split an NDJSON body into lines (blank lines and `#` comments are skipped) and
/// parse each; `first_line` numbers the first one. Pure.
pub fn parse_lines(body: &str, first_line: u64) -> Vec<ParsedLine> {
    body.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, l)| {
            let n = first_line + i as u64;
            (
                n,
                serde_json::from_str::<ImportLine>(l).map_err(|e| e.to_string()),
            )
        })
        .collect()
}

/// The kind and name a report shows for a line. Pure.
pub fn describe(line: &ImportLine) -> (&'static str, String) {
    match line {
        ImportLine::Customer { name, .. } => ("customer", name.clone()),
        ImportLine::Domain { name, .. } => ("domain", name.clone()),
        ImportLine::Site { domain, .. } => ("site", domain.clone()),
        ImportLine::Mailbox { address, .. } => ("mailbox", address.clone()),
        ImportLine::Alias { address, .. } => ("alias", address.clone()),
        ImportLine::DnsRecord { domain, name, .. } => ("dns_record", format!("{name} in {domain}")),
        ImportLine::FtpAccount { username, .. } => ("ftp_account", username.clone()),
        ImportLine::Database { name, .. } => ("database", name.clone()),
        ImportLine::DbUser { name, .. } => ("db_user", name.clone()),
    }
}

/// Add one line's outcome to `report`. Pure.
pub fn record(report: &mut ImportReport, result: ImportResult) {
    match result.status {
        ImportStatus::Created => {
            report.created += 1;
            *report
                .created_by_kind
                .entry(result.kind.clone())
                .or_default() += 1;
        }
        ImportStatus::Skipped => report.skipped += 1,
        ImportStatus::Refused => report.refused += 1,
    }
    report.results.push(result);
}

/// Import one chunk (see the module doc). Admins only.
pub async fn run(
    state: &AppState,
    caller: &Caller,
    body: &str,
    params: &ImportParams,
) -> ApiResult<ImportReport> {
    caller.require_admin()?;
    // RSA DKIM keys wait while the import runs (see `crate::dkim_rsa`).
    let _importing = crate::dkim_rsa::importing(state.changes.identity());
    let lines = parse_lines(body, params.first_line.unwrap_or(1).max(1));
    if lines.len() > MAX_LINES {
        return Err(crate::error::ApiError::too_large(format!(
            "at most {MAX_LINES} lines per request; the CLI sends a file in chunks"
        )));
    }
    let mut report = ImportReport {
        dry_run: params.dry_run,
        created_by_kind: BTreeMap::new(),
        ..Default::default()
    };
    let mut ctx = apply::Context::new(state).await?;
    let mut tx = state.store.begin(caller.actor()).await?;
    if !params.dry_run {
        ctx.reserve(&mut tx, lines.iter().filter(|(_, l)| l.is_ok()).count())
            .await?;
    }
    for window in lines.chunks(PREFETCH_WINDOW) {
        let readable: Vec<&ImportLine> =
            window.iter().filter_map(|(_, l)| l.as_ref().ok()).collect();
        ctx.prefetch(&mut tx, &readable).await?;
        for (n, parsed) in window {
            let result = match parsed {
                Err(why) => ImportResult {
                    line: *n,
                    kind: String::new(),
                    name: String::new(),
                    status: ImportStatus::Refused,
                    reason: Some(format!("unreadable line: {why}")),
                },
                Ok(line) => {
                    let (kind, name) = describe(line);
                    let (status, reason) = match ctx.apply(&mut tx, line).await {
                        Ok(apply::Applied::Created) => (ImportStatus::Created, None),
                        Ok(apply::Applied::Skipped) => (ImportStatus::Skipped, None),
                        Err(apply::LineError::Refused(e)) => (ImportStatus::Refused, Some(e)),
                        // The store failed mid-transaction: nothing of this chunk is kept.
                        Err(apply::LineError::Store(e)) => return Err(e),
                    };
                    ImportResult {
                        line: *n,
                        kind: kind.to_owned(),
                        name,
                        status,
                        reason,
                    }
                }
            };
            record(&mut report, result);
        }
    }
    if params.dry_run {
        drop(tx);
    } else {
        ctx.write(&mut tx).await?;
        tx.commit().await?;
        ctx.after_commit(state).await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_numbers_skipping_blanks_and_comments() {
        let body = "# header\n{\"kind\":\"customer\",\"name\":\"acme\"}\n\n{\"kind\":\"domain\",\"name\":\"acme.test\",\"customer\":\"acme\"}\nnot json\n{\"kind\":\"planet\",\"name\":\"x\"}\n{\"kind\":\"domain\",\"name\":\"a.test\",\"customer\":\"acme\",\"extra\":1}\n";
        let got = parse_lines(body, 10);
        let numbers: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![11, 13, 14, 15, 16]);
        assert!(matches!(&got[0].1, Ok(ImportLine::Customer { name, .. }) if name == "acme"));
        assert!(matches!(&got[1].1, Ok(ImportLine::Domain { customer, .. }) if customer == "acme"));
        assert!(got[2].1.is_err());
        assert!(
            got[3].1.as_ref().is_err_and(|e| e.contains("planet")),
            "{:?}",
            got[3].1
        );
        assert!(
            got[4].1.as_ref().is_err_and(|e| e.contains("extra")),
            "{:?}",
            got[4].1
        );
    }

    #[test]
    fn report_counts_by_status_and_kind() {
        let mut r = ImportReport::default();
        for (kind, status) in [
            ("domain", ImportStatus::Created),
            ("domain", ImportStatus::Created),
            ("mailbox", ImportStatus::Created),
            ("domain", ImportStatus::Skipped),
            ("site", ImportStatus::Refused),
        ] {
            record(
                &mut r,
                ImportResult {
                    line: 1,
                    kind: kind.into(),
                    name: String::new(),
                    status,
                    reason: None,
                },
            );
        }
        assert_eq!((r.created, r.skipped, r.refused), (3, 1, 1));
        assert_eq!(r.created_by_kind.get("domain"), Some(&2));
        assert_eq!(r.created_by_kind.get("mailbox"), Some(&1));
        assert_eq!(r.results.len(), 5);
    }

    #[test]
    fn describe_names_each_kind() {
        let l: ImportLine = serde_json::from_str(
            r#"{"kind":"dns_record","domain":"a.test","name":"www","data":{"type":"A","address":"192.0.2.1"}}"#,
        )
        .expect("line");
        assert_eq!(describe(&l), ("dns_record", "www in a.test".to_owned()));
    }
}
