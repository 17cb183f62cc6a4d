//! What the package-manager adapters (npm, pip) share: a chain of package sources (the
//! tool's configured registry or index, then the mirrors), checked before anything runs,
//! installs that walk that chain, and uninstalls that run locally once.
//!
//! An adapter keeps what is its own: its command line (grammar), how its failures read
//! (classification) and its repairs. This module only holds the skeleton around them, so
//! that "no package given", "a mirror that is not a URL" and "which host is the circuit
//! key" read and behave the same for every package tool.
//!
//! ```
//! use em_exec::packages::SourceKind;
//! const INDEX: SourceKind = SourceKind {
//!     tool: "pip",
//!     noun: "index",
//!     default_key: "pip-default-index",
//!     example: "https://pypi.example.org/simple/",
//! };
//! let chain = INDEX.chain(None, &["https://u:p@127.0.0.1:8443/simple/".to_string()]);
//! assert_eq!(chain[0].key(), "pip-default-index");
//! assert_eq!(chain[0].to_string(), "pip's configured index");
//! assert_eq!(chain[1].key(), "127.0.0.1:8443");
//! assert!(INDEX.check_urls(["ftp://127.0.0.1/"]).is_err());
//! ```

use std::fmt;
use std::sync::Arc;

use em_retry::Operation;

use crate::download::url_host;
use crate::{Adapter, Cmd, Runner, ToolError};

/// What a tool calls its package sources, and how its configured one is keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceKind {
    /// The tool, as messages name it: `npm`, `pip`.
    pub tool: &'static str,
    /// What one source is: `registry`, `index`.
    pub noun: &'static str,
    /// The circuit key of the tool's configured source, whose URL we do not know.
    pub default_key: &'static str,
    /// An example URL for the hint of a bad one.
    pub example: &'static str,
}

impl SourceKind {
    /// Checks source URLs: http(s), a host, and one argument (no whitespace or control
    /// characters). The error names the first bad URL and shows a good one.
    #[allow(clippy::result_large_err)] // ToolError: see `crate::ToolError`.
    pub fn check_urls<I>(&self, urls: I) -> Result<(), ToolError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for url in urls {
            let url = url.as_ref();
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url_host(url).is_empty()
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(ToolError::permanent(
                    self.tool,
                    format!("`{url}` is not {} {} URL", article(self.noun), self.noun),
                    Some(format!(
                        "{} {} is an http:// or https:// URL, e.g. {}",
                        article(self.noun),
                        self.noun,
                        self.example
                    )),
                ));
            }
        }
        Ok(())
    }

    /// The chain: `configured` (`None`: the tool's own configuration), then `mirrors`.
    pub fn chain(&self, configured: Option<&str>, mirrors: &[String]) -> Vec<Source> {
        std::iter::once(configured.map(str::to_string))
            .chain(mirrors.iter().cloned().map(Some))
            .map(|url| Source { url, kind: *self })
            .collect()
    }
}

/// `a registry`, `an index`.
fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// One source of a chain ([`SourceKind::chain`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The URL; `None` is the tool's configured source (no flag on the command line).
    pub url: Option<String>,
    kind: SourceKind,
}

impl Source {
    /// The circuit key: the URL's host (and port, without user info), or the kind's
    /// default key for the tool's configured source.
    pub fn key(&self) -> String {
        match self.url.as_deref().map(url_host) {
            Some(host) if !host.is_empty() => host.to_string(),
            _ => self.kind.default_key.to_string(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.url {
            Some(url) => f.write_str(url),
            None => write!(f, "{}'s configured {}", self.kind.tool, self.kind.noun),
        }
    }
}

/// The error of an operation given nothing to work on: `no package to install`. Checked
/// before anything runs.
#[allow(clippy::result_large_err)] // ToolError: see `crate::ToolError`.
pub fn require_items(
    operation: &Operation,
    count: usize,
    what: &str,
    verb: &str,
) -> Result<(), ToolError> {
    if count == 0 {
        return Err(ToolError::permanent(
            operation.to_string(),
            format!("no {what} to {verb}"),
            None,
        ));
    }
    Ok(())
}

/// Runs an install from each source of `sources` in turn (a fresh policy each, keyed by
/// [`Source::key`] for the circuit breaker) until one succeeds: the command of each
/// attempt is `build(source)`.
pub async fn install_from<A, B>(
    adapter: &Arc<A>,
    runner: &Runner,
    operation: Operation,
    sources: &[Source],
    build: B,
) -> Result<(), ToolError>
where
    A: Adapter,
    B: Fn(&Source) -> Cmd,
{
    runner
        .run_with_mirrors(adapter, operation, sources, Source::key, |source, _| {
            build(source)
        })
        .await
        .map(|_| ())
}

/// Runs a local operation (an uninstall: no source, no mirrors, no circuit) under the
/// runner's policy.
pub async fn run_local<A, B>(
    adapter: &Arc<A>,
    runner: &Runner,
    operation: Operation,
    build: B,
) -> Result<(), ToolError>
where
    A: Adapter,
    B: Fn() -> Cmd,
{
    runner
        .run(adapter, operation, None, |_| build())
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: SourceKind = SourceKind {
        tool: "npm",
        noun: "registry",
        default_key: "npm-default-registry",
        example: "https://registry.example.org/",
    };

    #[test]
    fn urls_are_checked_and_the_message_names_the_bad_one() {
        assert!(
            REGISTRY
                .check_urls(["https://127.0.0.1/", "http://127.0.0.1:8080/npm/"])
                .is_ok()
        );
        for bad in ["ftp://127.0.0.1/", "https://", "https://127.0.0.1/ x", "-x"] {
            let err = REGISTRY
                .check_urls(["https://127.0.0.1/", bad])
                .expect_err(bad);
            assert_eq!(err.reason, format!("`{bad}` is not a registry URL"));
            assert_eq!(
                err.hint.as_deref(),
                Some(
                    "a registry is an http:// or https:// URL, e.g. https://registry.example.org/"
                )
            );
        }
    }

    #[test]
    fn the_chain_starts_with_the_configured_source() {
        let chain = REGISTRY.chain(
            Some("https://127.0.0.1:1/"),
            &["https://me:pw@127.0.0.1:2/npm/".into()],
        );
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].key(), "127.0.0.1:1");
        assert_eq!(chain[1].key(), "127.0.0.1:2", "no user info in the key");
        let chain = REGISTRY.chain(None, &[]);
        assert_eq!(chain[0].url, None);
        assert_eq!(chain[0].key(), "npm-default-registry");
        assert_eq!(chain[0].to_string(), "npm's configured registry");
    }

    #[test]
    fn nothing_to_do_is_permanent_and_named() {
        let op = Operation::new("pip", "install");
        let err = require_items(&op, 0, "requirement", "install").expect_err("empty");
        assert_eq!(err.reason, "no requirement to install");
        assert_eq!(err.kind, crate::ToolErrorKind::Permanent);
        assert!(require_items(&op, 1, "requirement", "install").is_ok());
    }
}
