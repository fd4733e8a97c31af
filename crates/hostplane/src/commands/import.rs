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
    bar.clear();
    if ctx.out.json {
        crate::output::print_json(&report)?;
        return finish(&report);
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
    finish(&report)
}

/// Fail when lines were refused, after everything printed so far is out: the
/// `error:` line goes to standard error and must not run into the report.
fn finish(report: &ImportReport) -> anyhow::Result<()> {
    std::io::stdout().flush()?;
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

/// A one-line progress bar on standard error, drawn only on a terminal. Whatever
/// it drew is wiped by [`Bar::clear`], which leaves the cursor at the start of an
/// empty line, so the report and any `error:` line start on a line of their own.
struct Bar {
    total: u64,
    on: bool,
    /// Characters of the line drawn last (0: nothing on screen).
    drawn: std::cell::Cell<usize>,
}

impl Bar {
    fn new(total: u64, wanted: bool) -> Self {
        Self {
            total,
            on: wanted && std::io::stderr().is_terminal(),
            drawn: std::cell::Cell::new(0),
        }
    }

    /// Draw `text` over the previous line.
    fn draw(&self, text: &str) {
        let pad = self.drawn.get().saturating_sub(text.chars().count());
        eprint!("\r{text}{}", " ".repeat(pad));
        let _ = std::io::stderr().flush();
        self.drawn.set(text.chars().count().max(self.drawn.get()));
    }

    fn message(&self, what: &str) {
        if self.on {
            self.draw(&format!("{what} {} lines…", self.total));
        }
    }

    fn set(&self, done: u64, started: Instant) {
        if !self.on || self.total == 0 {
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done.min(self.total) * WIDTH / self.total) as usize;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        self.draw(&format!(
            "[{}{}] {done}/{} lines, {rate:.0}/s",
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled),
            self.total
        ));
    }

    /// Wipe the bar: the cursor is back at the start of an empty line.
    fn clear(&self) {
        if self.on && self.drawn.get() > 0 {
            eprint!("\r{}\r", " ".repeat(self.drawn.get()));
            let _ = std::io::stderr().flush();
            self.drawn.set(0);
        }
    }
}

impl Drop for Bar {
    /// An error that leaves `import` early must not print after a half-drawn bar.
    fn drop(&mut self) {
        self.clear();
    }
}
