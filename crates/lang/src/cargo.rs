//! cargo: `cargo install --locked`, `cargo install --list`, `cargo uninstall`.
//!
//! cargo retries a request itself (`net.retry`, 3 by default: `warning: spurious network
//! error (2 tries remaining): ...`, rust-lang/cargo#10183); we cut that to one through
//! `CARGO_NET_RETRY=1` so that our policy's attempts are the visible ones. The final error
//! is `error: failed to download from URL` / `Caused by:` and curl's `[N] message`, or
//! `failed to get successful HTTP response from URL ..., got 503` (rust-lang/cargo#12714).

use std::collections::BTreeMap;
use std::ffi::OsString;

use em_exec::Verdict;

use crate::{LangPackage, LangRepair, contains_any};

/// `cargo install --locked <packages>`: `--locked` builds with the crate's own
/// Cargo.lock, so the same pin builds the same dependencies every time.
pub(crate) fn install_args(packages: &[LangPackage]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["install".into(), "--locked".into()];
    args.extend(packages.iter().map(|p| p.argument().into()));
    args
}

/// One cargo retry inside an attempt, a bounded wait, no colour, no progress bar.
pub(crate) fn env() -> Vec<(String, String)> {
    [
        ("CARGO_NET_RETRY", "1"),
        ("CARGO_HTTP_TIMEOUT", "30"),
        ("CARGO_TERM_COLOR", "never"),
        ("CARGO_TERM_PROGRESS_WHEN", "never"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into()
}

/// The crates of `cargo install --list` with their versions: `ripgrep v14.1.0:` lines
/// (their binaries follow, indented; a crate from git or a path adds ` (SOURCE)`).
pub(crate) fn parse_list(text: &str) -> BTreeMap<String, Option<String>> {
    text.lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && l.trim_end().ends_with(':'))
        .filter_map(|l| {
            let mut words = l.trim_end().trim_end_matches(':').split_whitespace();
            let name = words.next()?.to_string();
            let version = words
                .next()
                .and_then(|v| v.strip_prefix('v'))
                .map(str::to_string);
            Some((name, version))
        })
        .collect()
}

/// Reads a failed cargo run.
pub(crate) fn classify(text: &str) -> Verdict<LangRepair> {
    if let Some(line) = text.lines().find(|l| l.contains("could not find `")) {
        return Verdict::Permanent(
            line.trim().trim_start_matches("error: ").to_string(),
            Some("check the crate's name and version on its registry (a binary's name is not always its crate's: `rg` is in `ripgrep`)".into()),
        );
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("failed to select a version for the requirement"))
    {
        return Verdict::Permanent(
            line.trim().trim_start_matches("error: ").to_string(),
            Some("that version does not exist, or was yanked; pick one that does".into()),
        );
    }
    if contains_any(text, &["SSL certificate problem", "[60] "]) {
        return Verdict::Permanent(
            "the registry's TLS certificate was not accepted".into(),
            Some("a TLS-inspecting proxy needs its CA in CARGO_HTTP_CAINFO or the system store; check the clock. Verification is never turned off".into()),
        );
    }
    if let Some(line) = text.lines().find(|l| l.contains("failed to compile `")) {
        return Verdict::Permanent(
            line.trim().trim_start_matches("error: ").to_string(),
            Some("the crate did not build: read the compiler's errors above; a missing system library needs its -dev package (pkg-config, libssl-dev), an old toolchain needs `rustup update`".into()),
        );
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("already exists in destination"))
    {
        return Verdict::Permanent(
            line.trim().trim_start_matches("error: ").to_string(),
            Some(
                "another crate installed a binary of that name: `cargo install --list` shows which"
                    .into(),
            ),
        );
    }
    // A lock held by another cargo, or left by a crashed one: cargo waits itself on the
    // package cache, and gives up on a locked git index (`The index is locked. This might
    // be due to a concurrent or crashed process`, rust-lang/cargo#1610): wait, then again.
    if contains_any(
        text,
        &["The index is locked", "Blocking waiting for file lock"],
    ) {
        return Verdict::Transient(
            "cargo's registry index is locked by another cargo: waiting".into(),
        );
    }
    if let Some(code) = got_status(text)
        && (code >= 500 || code == 429 || code == 408)
    {
        return Verdict::Transient(format!("HTTP {code} from the registry"));
    }
    if let Some(signal) = [
        "[6] Couldn't resolve host name",
        "[7] Couldn't connect to server",
        "[28] Timeout was reached",
        "[35] ",
        "[52] ",
        "[55] ",
        "[56] ",
        "spurious network error",
        "Connection reset by peer",
    ]
    .iter()
    .find(|s| text.contains(*s))
    {
        return Verdict::Transient(format!(
            "network error ({})",
            signal.trim_start_matches('[').trim()
        ));
    }
    Verdict::Transient(
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("cargo failed without a message")
            .to_string(),
    )
}

/// The status of cargo's `..., got 503` (`failed to get 200 response from URL, got 504`).
fn got_status(text: &str) -> Option<u16> {
    text.lines().find_map(|l| {
        let (_, rest) = l.rsplit_once(", got ")?;
        rest.trim().get(..3)?.parse().ok()
    })
}
