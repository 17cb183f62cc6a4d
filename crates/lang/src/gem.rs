//! RubyGems: `gem install --no-document`, `gem list --local`, `gem uninstall -a -x -I`.
//!
//! gem prints `ERROR:  Could not find a valid gem 'X' (>= 0), here is why:` and then the
//! fetch error (`Unable to download data from URL - SocketError: ...`), or, when the
//! index answered and the gem is not in it, the first line alone. Network failures end in
//! `ERROR:  While executing gem ... (Gem::RemoteFetcher::FetchError)` with the Ruby
//! exception: `Errno::ECONNREFUSED`, `bad response Service Unavailable 503`
//! (hammackj/risu#60, ruby/rubygems#2095, #2184).

use std::collections::BTreeMap;
use std::ffi::OsString;

use em_exec::Verdict;

use crate::{LangPackage, LangRepair, contains_any};

/// `gem install --no-document --conservative <name[:version]>...`: no rdoc/ri to build;
/// `--conservative` leaves an installed gem that already satisfies the request alone.
pub(crate) fn install_args(packages: &[LangPackage]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "install".into(),
        "--no-document".into(),
        "--conservative".into(),
    ];
    args.extend(packages.iter().map(|p| p.argument().into()));
    args
}

/// `gem uninstall -a -x -I <names>`: all versions (each was added by the install being
/// undone), executables without asking, no dependency prompt (stdin is closed: a prompt
/// would fail the run).
pub(crate) fn uninstall_args(names: &[String]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["uninstall".into(), "-a".into(), "-x".into(), "-I".into()];
    args.extend(names.iter().map(OsString::from));
    args
}

/// The gems of `gem list --local` with their newest version: `rake (13.2.1, 13.0.6)`,
/// `bigdecimal (default: 3.1.1)`.
pub(crate) fn parse_list(text: &str) -> BTreeMap<String, Option<String>> {
    text.lines()
        .filter_map(|l| l.split_once(" ("))
        .map(|(name, versions)| {
            let newest = versions
                .trim_end()
                .trim_end_matches(')')
                .split(',')
                .next()
                .map(|v| v.trim().trim_start_matches("default:").trim().to_string())
                .filter(|v| !v.is_empty());
            (name.trim().to_string(), newest)
        })
        .filter(|(n, _)| !n.is_empty() && !n.contains(' '))
        .collect()
}

/// Reads a failed gem run.
pub(crate) fn classify(text: &str) -> Verdict<LangRepair> {
    if text.contains("certificate verify failed") {
        return Verdict::Permanent(
            "the gem source's TLS certificate was not accepted (certificate verify failed)".into(),
            Some("a TLS-inspecting proxy needs its CA in SSL_CERT_FILE or the system store; check the clock. Verification is never turned off".into()),
        );
    }
    if let Some(code) = bad_response(text)
        && (code >= 500 || code == 429 || code == 408)
    {
        return Verdict::Transient(format!("HTTP {code} from the gem source"));
    }
    if let Some(signal) = [
        "Errno::ECONNRESET",
        "Errno::ECONNREFUSED",
        "Errno::ETIMEDOUT",
        "Errno::EHOSTUNREACH",
        "Errno::ENETUNREACH",
        "Net::ReadTimeout",
        "Net::OpenTimeout",
        "SocketError",
        "Timeout::Error",
        "Connection reset by peer",
        "no such name",
    ]
    .iter()
    .find(|s| text.contains(*s))
    {
        return Verdict::Transient(format!("network error ({signal})"));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Could not find a valid gem"))
    {
        return Verdict::Permanent(
            line.trim().trim_start_matches("ERROR:").trim().to_string(),
            Some("check the gem's name and version (`gem search NAME --remote`)".into()),
        );
    }
    if contains_any(text, &["Failed to build gem native extension"]) {
        return Verdict::Permanent(
            "the gem's native extension did not build".into(),
            Some(
                "native gems need ruby-dev and build-essential (and the library's -dev package)"
                    .into(),
            ),
        );
    }
    if text.contains("You don't have write permissions") {
        return Verdict::Permanent(
            "gem cannot write the gem directory".into(),
            Some("run as root for the system gems, or set GEM_HOME to a directory you own".into()),
        );
    }
    Verdict::Transient(
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("gem failed without a message")
            .to_string(),
    )
}

/// The status of `bad response Service Unavailable 503 (URL)`.
fn bad_response(text: &str) -> Option<u16> {
    text.lines().find_map(|l| {
        let (_, rest) = l.split_once("bad response ")?;
        rest.split_whitespace()
            .find_map(|w| (w.len() == 3).then(|| w.parse::<u16>().ok()).flatten())
    })
}
