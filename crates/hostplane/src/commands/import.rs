//! `hostplane import FILE`: sends the whole file as a dry run first (everything is
//! validated before anything is written), then, if every line passed (or with
//! `--partial`, the lines that passed), commits it in batches of `--batch` lines, one
//! transaction each, with a progress bar on a terminal. Prints what was created,
//! skipped and refused, with line numbers and reasons (`--json`: every line).

use std::io::{IsTerminal, Read, Write};
use std::time::Instant;

use anyhow::Context as _;
use proto::v1_import::{ImportReport, ImportStatus};

use super::Ctx;
use crate::cli::ImportArgs;

/// Run `hostplane import`.
pub async fn import(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let lines: Vec<&str> = text.lines().collect();
    let api = ctx.api()?;
    let started = Instant::now();
    let bar = Bar::new(lines.len() as u64, !ctx.out.json);
    bar.message("validating");
    let check = api.import_chunk(text.clone(), 1, true).await?;
    bar.clear();
    let report = if args.dry_run || (check.refused > 0 && !args.partial) {
        check
    } else {
        let refused: std::collections::BTreeSet<u64> = check
            .results
            .iter()
            .filter(|r| r.status == ImportStatus::Refused)
            .map(|r| r.line)
            .collect();
        let mut total = ImportReport::default();
        let mut start = 0usize;
        while start < lines.len() {
            let end = (start + args.batch as usize).min(lines.len());
            // Refused lines are sent as blank lines: numbers stay right, nothing is written.
            let chunk: Vec<&str> = (start..end)
                .map(|i| {
                    if refused.contains(&(i as u64 + 1)) {
                        ""
                    } else {
                        lines[i]
                    }
                })
                .collect();
            if chunk.iter().all(|l| l.trim().is_empty()) {
                // Nothing left to send in this batch (blank or refused lines only).
                bar.set(end as u64, started);
                start = end;
                continue;
            }
            let part = api
                .import_chunk(chunk.join("\n"), start as u64 + 1, false)
                .await
                .with_context(|| format!("batch of lines {}..={end} (earlier batches are written; run the import again to resume)", start + 1))?;
            merge(&mut total, part);
            bar.set(end as u64, started);
            start = end;
        }
        bar.clear();
        for r in check
            .results
            .into_iter()
            .filter(|r| r.status == ImportStatus::Refused)
        {
            proto_record(&mut total, r);
        }
        total.results.sort_by_key(|r| r.line);
        total
    };
    let secs = started.elapsed().as_secs_f64();
    if ctx.out.json {
        crate::output::print_json(&report)?;
        if report.refused > 0 {
            anyhow::bail!("{} line(s) refused", report.refused);
        }
        return Ok(());
    }
    for r in report
        .results
        .iter()
        .filter(|r| r.status == ImportStatus::Refused)
    {
        let what = if r.kind.is_empty() {
            String::new()
        } else {
            format!(" {} `{}`", r.kind, r.name)
        };
        println!(
            "line {}{what}: refused: {}",
            r.line,
            r.reason.as_deref().unwrap_or("")
        );
    }
    let kinds: Vec<String> = report
        .created_by_kind
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let verb = if report.dry_run {
        "would create"
    } else {
        "created"
    };
    println!(
        "{verb} {} ({}), skipped {} already present, refused {} — {} lines in {secs:.1} s",
        report.created,
        if kinds.is_empty() {
            "nothing".to_owned()
        } else {
            kinds.join(", ")
        },
        report.skipped,
        report.refused,
        lines.len(),
    );
    if !report.dry_run && report.refused > 0 && !args.partial && report.created == 0 {
        println!(
            "nothing was written: fix the refused lines, or pass --partial to import the others"
        );
    }
    if report.refused > 0 {
        anyhow::bail!("{} line(s) refused", report.refused);
    }
    Ok(())
}

fn merge(total: &mut ImportReport, part: ImportReport) {
    for r in part.results {
        proto_record(total, r);
    }
}

fn proto_record(total: &mut ImportReport, r: proto::v1_import::ImportResult) {
    match r.status {
        ImportStatus::Created => {
            total.created += 1;
            *total.created_by_kind.entry(r.kind.clone()).or_default() += 1;
        }
        ImportStatus::Skipped => total.skipped += 1,
        ImportStatus::Refused => total.refused += 1,
    }
    total.results.push(r);
}

/// A one-line progress bar on standard error, drawn only on a terminal.
struct Bar {
    total: u64,
    on: bool,
}

impl Bar {
    fn new(total: u64, wanted: bool) -> Self {
        Self {
            total,
            on: wanted && std::io::stderr().is_terminal(),
        }
    }

    fn message(&self, what: &str) {
        if self.on {
            eprint!("\r{what} {} lines…", self.total);
            let _ = std::io::stderr().flush();
        }
    }

    fn set(&self, done: u64, started: Instant) {
        if !self.on || self.total == 0 {
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH / self.total) as usize;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r[{}{}] {done}/{} lines, {rate:.0}/s ",
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r{}\r", " ".repeat(70));
            let _ = std::io::stderr().flush();
        }
    }
}
