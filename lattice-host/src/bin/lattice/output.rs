//! Printing results: tables for people, JSON for programs.

use comfy_table::{Table, presets};
use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns.
    Table,
    /// JSON on stdout, one document per result (one per line for `watch`).
    Json,
}

/// Prints a table with a header row.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    // comfy-table pads each cell with a space on either side.
    for line in table.to_string().lines() {
        println!("{}", line.strip_prefix(' ').unwrap_or(line).trim_end());
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
    }
}

/// Prints an error: to stderr, with what to do next; with `--output json`
/// also as `{"error": {kind, status, message}}` on stdout.
pub(crate) fn error(output: Output, error: &anyhow::Error) {
    let typed = error.downcast_ref::<lattice::Error>();
    if output == Output::Json {
        let body = match typed {
            Some(e) => serde_json::json!({
                "error": { "kind": e.kind().as_str(), "status": e.status(), "message": e.message() }
            }),
            None => {
                serde_json::json!({ "error": { "kind": "cli", "message": format!("{error:#}") } })
            }
        };
        println!("{body}");
    }
    match typed {
        Some(e) => eprintln!(
            "error: {} ({}): {}",
            e.kind().as_str(),
            e.status(),
            e.message()
        ),
        None => eprintln!("error: {error:#}"),
    }
}

/// The first 12 hex digits of a digest.
pub(crate) fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// A duration in milliseconds as people read it: `3h 12m`, `45s`.
pub(crate) fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}
