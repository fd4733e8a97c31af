//! Rendering of API objects: JSON (`--json`), aligned tables for listings and
//! `key: value` lines for single objects.
//!
//! The `Render` impls live in one submodule per area (infra, accounts, domains, sites,
//! mail, databases); the shared cell helpers stay here.

use comfy_table::{presets, Table};
use proto::v1::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

mod accounts;
mod databases;
mod domains;
mod infra;
mod mail;
mod sites;

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of human text.
    pub json: bool,
}

/// The result of a listing: every item, or one page.
#[derive(Debug)]
pub enum Listing<T> {
    /// Every item (all pages were fetched).
    All(Vec<T>),
    /// One page, maybe with a cursor to the next.
    Page(Page<T>),
}

/// An object that can be shown as a table row and as `key: value` lines.
pub trait Render {
    /// Column titles of a listing.
    const HEADERS: &'static [&'static str];
    /// One cell per column.
    fn cells(&self) -> Vec<String>;
    /// Every field for `show`.
    fn fields(&self) -> Vec<(&'static str, String)>;
}

impl Output {
    /// Print a listing: a JSON array (all) or page object, or a table.
    pub fn list<T: Render + Serialize>(&self, listing: &Listing<T>) -> anyhow::Result<()> {
        if self.json {
            return match listing {
                Listing::All(items) => print_json(items),
                Listing::Page(page) => print_json(page),
            };
        }
        let (items, next) = match listing {
            Listing::All(items) => (items.as_slice(), None),
            Listing::Page(page) => (page.items.as_slice(), page.next_cursor.as_deref()),
        };
        if items.is_empty() {
            println!("(none)");
        } else {
            println!("{}", table(T::HEADERS, items.iter().map(Render::cells)));
        }
        if let Some(cursor) = next {
            println!("\nmore: repeat with --cursor {cursor} (or use --all)");
        }
        Ok(())
    }

    /// Print one object.
    pub fn one<T: Render + Serialize>(&self, item: &T) -> anyhow::Result<()> {
        if self.json {
            return print_json(item);
        }
        print_fields(&item.fields());
        Ok(())
    }

    /// Print a created object that may carry a generated password.
    pub fn with_password<T: Render + Serialize>(
        &self,
        created: &WithPassword<T>,
    ) -> anyhow::Result<()> {
        if self.json {
            return print_json(created);
        }
        print_fields(&created.object.fields());
        if let Some(password) = &created.generated_password {
            secret("generated password", password);
        }
        Ok(())
    }

    /// Confirm a deletion.
    pub fn deleted(&self, kind: &str, key: &str) -> anyhow::Result<()> {
        if self.json {
            return print_json(&serde_json::json!({ "deleted": kind, "key": key }));
        }
        println!("deleted {kind} {key}");
        Ok(())
    }

    /// Print an arbitrary serializable value as JSON, or `fields` as text.
    pub fn value<T: Serialize>(&self, value: &T, fields: &[(&str, String)]) -> anyhow::Result<()> {
        if self.json {
            return print_json(value);
        }
        print_fields(fields);
        Ok(())
    }
}

/// Pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Print a secret with the note that it is shown only this once.
pub fn secret(label: &str, value: &str) {
    println!();
    println!("{label}: {value}");
    println!("  (shown once: store it now, it cannot be displayed again)");
}

/// `key: value` lines, keys aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{:<w$}  {value}", format!("{key}:"), w = width + 1);
    }
}

/// An aligned, borderless table: upper-case headers, two spaces between columns,
/// no trailing blanks.
pub fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(headers.iter().map(|h| h.to_ascii_uppercase()));
    for row in rows {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".into())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        "-".into()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn text(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.into()
}

/// A quota in MiB, `unlimited` for 0.
fn quota(mb: u64) -> String {
    if mb == 0 {
        "unlimited".into()
    } else {
        format!("{mb} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["name", "role"],
            vec![
                vec!["alpha".into(), "web".into()],
                vec!["d".into(), "dns".into()],
            ]
            .into_iter(),
        );
        let text = t;
        let lines: Vec<_> = text.lines().map(str::trim_end).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "{text}");
        assert!(
            lines[0].contains("NAME") && lines[0].contains("ROLE"),
            "{text}"
        );
        let col = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(col(lines[0], "ROLE"), col(lines[1], "web"), "{text}");
        assert_eq!(col(lines[1], "web"), col(lines[2], "dns"), "{text}");
    }
}
