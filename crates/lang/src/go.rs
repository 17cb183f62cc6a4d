//! go: `go install path@version` into GOBIN, the binaries there, and removing one.
//!
//! go reports a module fetch as `go: path@v: reading URL/@v/v.info: 404 Not Found` with the
//! proxy's `server response: not found: ... invalid version: unknown revision v` on the next
//! line (golang/go#78907), `410 Gone` for a version the proxy will not serve
//! (golang/go#32461), `no matching versions for query "latest"`, and network failures as Go
//! net errors: `dial tcp ...: connect: connection refused`, `read: connection reset by
//! peer` (dominikh/go-tools#372), `i/o timeout`, `TLS handshake timeout`. A build failure
//! is the compiler's `file.go:L:C: message` lines.

use std::ffi::OsString;

use em_exec::Verdict;

use crate::{LangPackage, LangRepair, contains_any};

/// `go install <path@version>...`.
pub(crate) fn install_args(packages: &[LangPackage]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["install".into()];
    args.extend(packages.iter().map(|p| p.argument().into()));
    args
}

/// Reads a failed go run.
pub(crate) fn classify(text: &str) -> Verdict<LangRepair> {
    if contains_any(
        text,
        &["x509: certificate", "tls: failed to verify certificate"],
    ) {
        return Verdict::Permanent(
            "the module proxy's TLS certificate was not accepted".into(),
            Some("a TLS-inspecting proxy needs its CA in SSL_CERT_FILE or the system store; check the clock. GOINSECURE is never set".into()),
        );
    }
    if let Some(line) = text.lines().find(|l| {
        contains_any(
            l,
            &[
                "unknown revision",
                "invalid version",
                "no matching versions for query",
                "cannot find module providing package",
                "is not a main package",
                "404 Not Found",
                "410 Gone",
            ],
        )
    }) {
        return Verdict::Permanent(
            line.trim().trim_start_matches("go: ").to_string(),
            Some("check the module path and version (`go list -m -versions PATH`); a binary lives at the path of its main package".into()),
        );
    }
    if let Some(line) = text.lines().find(|l| l.contains("requires go >=")) {
        return Verdict::Permanent(
            line.trim().trim_start_matches("go: ").to_string(),
            Some(
                "this Go is too old for that version: pin an older one, or install a newer Go"
                    .into(),
            ),
        );
    }
    if let Some(code) = status_after_colon(text)
        && (code >= 500 || code == 429 || code == 408)
    {
        return Verdict::Transient(format!("HTTP {code} from the module proxy"));
    }
    if let Some(signal) = [
        "connection reset by peer",
        "connection refused",
        "i/o timeout",
        "TLS handshake timeout",
        "no such host",
        "unexpected EOF",
        "server misbehaving",
        "network is unreachable",
    ]
    .iter()
    .find(|s| text.contains(*s))
    {
        return Verdict::Transient(format!("network error ({signal})"));
    }
    if let Some(line) = text.lines().find(|l| is_compiler_error(l)) {
        return Verdict::Permanent(
            format!("the build failed: {}", line.trim()),
            Some("the module does not build with this Go: pin a version that does".into()),
        );
    }
    Verdict::Transient(
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("go failed without a message")
            .to_string(),
    )
}

/// `...: 503 Service Unavailable` at the end of a `reading URL: ` line.
fn status_after_colon(text: &str) -> Option<u16> {
    text.lines().find_map(|l| {
        let (_, rest) = l.rsplit_once(": ")?;
        let word = rest.split_whitespace().next()?;
        (word.len() == 3).then(|| word.parse().ok()).flatten()
    })
}

/// `path/file.go:12:2: message`.
fn is_compiler_error(line: &str) -> bool {
    let Some((file, rest)) = line.trim().split_once(".go:") else {
        return false;
    };
    !file.is_empty()
        && rest
            .split(':')
            .next()
            .is_some_and(|n| n.parse::<u32>().is_ok())
}
