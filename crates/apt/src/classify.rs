//! Reading apt-get and dpkg failures: exit code and text (always `LC_ALL=C`) to a verdict.
//!
//! The rules are tried in order; the first that matches decides. The order matters where
//! messages co-occur: "held broken packages" comes with "unmet dependencies" lines, a
//! failing `dpkg --configure -a` prints the same maintainer-script error as the install
//! that it repairs, and "are you root?" is printed next to "Unable to acquire the dpkg
//! frontend lock".

use std::fmt;

use em_exec::{ToolFailure, Verdict};

/// A repair apt-get or dpkg failures call for. `Display` is the command it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AptRepair {
    /// `dpkg --configure -a`, then `apt-get -f install -y`: finish what an interrupted or
    /// failed dpkg run left half-done.
    ConfigurePending,
    /// `apt-get -f install -y`: complete or remove what has unmet dependencies.
    FixBroken,
    /// Remove `<lists>/partial/*`, `apt-get clean`, and `apt-get update` before the next
    /// install attempt (an update operation's next attempt is itself the update).
    ClearLists,
    /// `apt-get update --error-on=any`: the package lists are missing, stale, or name
    /// files the mirror no longer has.
    Update,
}

impl AptRepair {
    /// A short stable name, for metrics labels and the fixtures' `repair:` field.
    pub fn name(&self) -> &'static str {
        match self {
            AptRepair::ConfigurePending => "dpkg-configure",
            AptRepair::FixBroken => "apt-fix-broken",
            AptRepair::ClearLists => "clear-lists",
            AptRepair::Update => "apt-update",
        }
    }
}

impl fmt::Display for AptRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AptRepair::ConfigurePending => "dpkg --configure -a; apt-get -f install -y",
            AptRepair::FixBroken => "apt-get -f install -y",
            AptRepair::ClearLists => "rm lists/partial/*; apt-get clean; apt-get update",
            AptRepair::Update => "apt-get update",
        })
    }
}

/// What [`classify`] needs to know beyond the failure itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifyContext {
    /// The package lists exist and were updated within `update_max_age` (or by us in this
    /// process). Decides whether "Unable to locate package" is worth an `apt-get update`.
    pub lists_fresh: bool,
}

impl ClassifyContext {
    /// Lists updated recently: a missing package is really missing.
    pub fn fresh() -> Self {
        ClassifyContext { lists_fresh: true }
    }

    /// Lists missing or old: a missing package may only be missing from our copy.
    pub fn stale() -> Self {
        ClassifyContext { lists_fresh: false }
    }
}

/// HTTP statuses worth another attempt: timeouts, rate limits, server errors.
fn is_transient_status(code: u16) -> bool {
    matches!(code, 408 | 429) || (500..600).contains(&code)
}

/// Reads a failed apt-get or dpkg run. Pure: exit code, command line and text only.
///
/// ```
/// use em_apt::{AptRepair, ClassifyContext, classify};
/// use em_exec::{ToolFailure, Verdict};
/// let f = ToolFailure::new("apt-get install -y x", 100, "",
///     "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n");
/// assert!(matches!(classify(&f, &ClassifyContext::fresh()),
///     Verdict::Repairable(AptRepair::ConfigurePending, _)));
/// ```
pub fn classify(failure: &ToolFailure, context: &ClassifyContext) -> Verdict<AptRepair> {
    let text = failure.text();
    machine(&text)
        .or_else(|| dpkg_and_locks(failure, &text))
        .or_else(|| dependencies_and_configuration(&text))
        .or_else(|| repository_integrity(&text))
        .or_else(|| downloads(failure, &text))
        .or_else(|| package_names(&text, context))
        .or_else(|| closing_summary(&text))
        .unwrap_or_else(|| unrecognised(failure, &text))
}

/// The machine refuses: no root privileges, or no disk space left.
fn machine(text: &str) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    // Privileges: nothing to retry. apt prints this next to the lock messages.
    if has("are you root?")
        || has("requires superuser privilege")
        || has("sudo: a password is required")
        || has("sudo: a terminal is required")
        || error_lines(text).any(|l| l.contains("Permission denied"))
    {
        return Some(Verdict::Permanent(
            "apt and dpkg need root for this".into(),
            Some(
                "run as root (e.g. a Dockerfile RUN before USER), or allow this user \
                 passwordless sudo: `sudo -n` is used when present"
                    .into(),
            ),
        ));
    }
    if has("No space left on device") || has("You don't have enough free space") {
        let where_ = text
            .lines()
            .find_map(|l| l.split_once("You don't have enough free space in "))
            .map(|(_, rest)| format!(" in {}", rest.trim_end_matches(['.', ' '])))
            .unwrap_or_default();
        return Some(Verdict::Permanent(
            format!("no space left{where_}"),
            Some(
                "free some disk space (`apt-get clean` frees the package cache), then try again"
                    .into(),
            ),
        ));
    }
    None
}

/// dpkg and its locks: the `dpkg --configure -a` repair itself failing, an interrupted dpkg
/// run, or a lock still held by another process.
fn dpkg_and_locks(failure: &ToolFailure, text: &str) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    // The repair itself failing: `dpkg --configure -a` runs the same maintainer script
    // that failed during the install. Repeated means permanent (docs/failures.md, dpkg).
    if is_dpkg_configure(&failure.command)
        && (has("subprocess returned error exit status") || has("Errors were encountered"))
    {
        let package = processing_package(text).unwrap_or_else(|| "a package".into());
        return Some(Verdict::Permanent(
            format!("the maintainer script of {package} fails (dpkg --configure -a)"),
            Some(
                "read the script's output above; `dpkg --audit` lists what is left \
                 unconfigured, `apt-get remove` of that package clears it"
                    .into(),
            ),
        ));
    }
    if has("dpkg was interrupted") {
        return Some(Verdict::Repairable(
            AptRepair::ConfigurePending,
            "dpkg was interrupted: an earlier run did not finish".into(),
        ));
    }
    // Locks: DPkg::Lock::Timeout already waited for the holder, so this is a holder that
    // outlived the wait (unattended-upgrades, cloud-init): another attempt later may pass.
    // Never delete lock files.
    if has("Could not get lock")
        || has("Unable to acquire the dpkg frontend lock")
        || has("lock was locked by another process")
        || has("Unable to lock directory")
    {
        let holder = lock_holder(text)
            .map(|h| format!(" (held by {h})"))
            .unwrap_or_default();
        return Some(Verdict::Transient(format!(
            "the apt/dpkg lock is busy{holder}"
        )));
    }
    None
}

/// Dependencies and configuration: held broken packages, unmet dependencies, or dpkg
/// failing to configure a package during the install.
fn dependencies_and_configuration(text: &str) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    if has("held broken packages") {
        let detail = text
            .lines()
            .find(|l| l.contains(" : Depends: ") || l.contains(" : PreDepends: "))
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        return Some(Verdict::Permanent(
            format!("the dependencies cannot be satisfied{detail}"),
            Some(
                "a dependency is missing from the configured sources or pinned to another \
                 release; `apt-cache policy <package>` shows what the sources offer"
                    .into(),
            ),
        ));
    }
    if has("Unmet dependencies")
        || has("apt --fix-broken install")
        || has("dependency problems prevent configuration")
        || has("unpacked but not yet configured")
    {
        return Some(Verdict::Repairable(
            AptRepair::FixBroken,
            "installed packages have unmet dependencies".into(),
        ));
    }
    // "exited unexpectedly": dpkg itself died (killed, OOM) mid-run, as seen in our e2e
    // run with apt 2.6.1; the journal needs `dpkg --configure -a` before anything else.
    if has("Sub-process /usr/bin/dpkg returned an error code")
        || has("Sub-process /usr/bin/dpkg exited unexpectedly")
        || has("subprocess returned error exit status")
        || has("only half configured")
    {
        let package = processing_package(text)
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        return Some(Verdict::Repairable(
            AptRepair::ConfigurePending,
            format!("dpkg failed to configure a package{package}"),
        ));
    }
    None
}

/// The repository cannot be trusted as served: a file that does not match its index, an
/// expired or invalid Release file, a missing signing key, or no Release file at all.
fn repository_integrity(text: &str) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    if has("Hash Sum mismatch") || has("File has unexpected size") {
        let host = fetch_failures(text)
            .first()
            .map(|f| format!(" from {}", f.host))
            .unwrap_or_default();
        let what = if has("Hash Sum mismatch") {
            "Hash Sum mismatch"
        } else {
            "file of unexpected size"
        };
        return Some(Verdict::Repairable(
            AptRepair::ClearLists,
            format!("{what}{host} (mirror sync in progress?)"),
        ));
    }
    if has("is expired") || has("is not valid yet") {
        return Some(Verdict::Permanent(
            "a Release file is expired or not valid yet".into(),
            Some(
                "check the machine's clock (`date -u`); for a snapshot archive, \
                 `-o Acquire::Check-Valid-Until=false` is the knowing override"
                    .into(),
            ),
        ));
    }
    // A captive portal or proxy answering with its own page instead of the InRelease file.
    if has("Clearsigned file isn't valid") {
        return Some(Verdict::Transient(
            "the InRelease file is not what the mirror serves (Clearsigned file isn't valid): \
             a captive portal or proxy may be answering instead"
                .into(),
        ));
    }
    if has("NO_PUBKEY")
        || has("is not signed")
        || has("The following signatures couldn't be verified")
    {
        let key = text
            .split_whitespace()
            .skip_while(|w| *w != "NO_PUBKEY")
            .nth(1)
            .map(|k| format!(" (NO_PUBKEY {k})"))
            .unwrap_or_default();
        return Some(Verdict::Permanent(
            format!("a repository is not signed with a key this machine trusts{key}"),
            Some(
                "install the repository's signing key and reference it with `signed-by=`; \
                 never add `trusted=yes` to a remote repository"
                    .into(),
            ),
        ));
    }
    if has("does not have a Release file") {
        let repo = quoted_after(text, "The repository '").unwrap_or_else(|| "a repository".into());
        return Some(Verdict::Permanent(
            format!("{repo} does not have a Release file"),
            Some("the suite or the URL of this source is wrong (check the codename)".into()),
        ));
    }
    None
}

/// Downloads that failed with an HTTP status or a network error: a transient status or a
/// network error retries, another status is a wrong source entry (index) or stale lists (.deb).
fn downloads(failure: &ToolFailure, text: &str) -> Option<Verdict<AptRepair>> {
    let failures = fetch_failures(text);
    let is_index = text.contains("Some index files failed to download")
        || failure.command.split_whitespace().any(|w| w == "update");
    if let Some(f) = failures
        .iter()
        .find(|f| f.status.is_some_and(is_transient_status))
    {
        return Some(Verdict::Transient(f.describe()));
    }
    if let Some(f) = failures.iter().find(|f| f.status.is_some()) {
        return Some(if is_index {
            Verdict::Permanent(
                f.describe(),
                Some(format!(
                    "the source entry for {} names a path, suite or component that the \
                     server does not have",
                    f.host
                )),
            )
        } else {
            // A .deb the lists name is gone: the lists predate a mirror update.
            Verdict::Repairable(
                AptRepair::Update,
                format!("{} (the package lists are out of date)", f.describe()),
            )
        });
    }
    failures
        .iter()
        .find(|f| f.is_network())
        .map(|f| Verdict::Transient(f.describe()))
}

/// A package or version the lists do not offer: unable to locate (really missing with fresh
/// lists, maybe only stale lists otherwise), no installation candidate, version not found.
fn package_names(text: &str, context: &ClassifyContext) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    let missing = unable_to_locate(text);
    if !missing.is_empty() {
        let names = missing
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, verb) = if missing.len() == 1 {
            ("package", "is")
        } else {
            ("packages", "are")
        };
        return Some(if context.lists_fresh {
            Verdict::Permanent(
                format!(
                    "{noun} {names} {verb} not in the package lists (Unable to locate package)"
                ),
                Some(
                    "check the spelling (`apt-cache search <name>`); the package may come \
                     from a repository that is not configured on this machine"
                        .into(),
                ),
            )
        } else {
            Verdict::Repairable(
                AptRepair::Update,
                format!(
                    "{noun} {names} {verb} not in the package lists, which are missing or stale"
                ),
            )
        });
    }
    if let Some(package) = quoted_after(text, "E: Package '")
        && has("has no installation candidate")
    {
        return Some(Verdict::Permanent(
            format!("package `{package}` has no installation candidate"),
            Some(format!(
                "it is virtual or only referenced by other packages; `apt-cache policy {package}` \
                 and `apt-cache showpkg {package}` show what provides it"
            )),
        ));
    }
    if has("has no installation candidate") {
        return Some(Verdict::Permanent(
            "a package has no installation candidate".into(),
            None,
        ));
    }
    text.lines()
        .find(|l| l.contains("Version '") && l.contains("' was not found"))
        .map(|line| {
            Verdict::Permanent(
                line.trim_start_matches("E: ").trim().to_string(),
                Some("`apt-cache policy <package>` lists the versions the sources offer".into()),
            )
        })
}

/// apt's closing summary lines, when nothing more specific was printed before them.
fn closing_summary(text: &str) -> Option<Verdict<AptRepair>> {
    let has = |needle: &str| text.contains(needle);
    if has("Unable to fetch some archives") || has("Some files failed to download") {
        return Some(Verdict::Repairable(
            AptRepair::Update,
            "some archives could not be downloaded (the package lists may be out of date)".into(),
        ));
    }
    if has("Some index files failed to download") {
        return Some(Verdict::Transient(
            "some index files failed to download".into(),
        ));
    }
    None
}

/// Unknown: SPEC section 3 says unclassified failures retry. Say what we saw.
fn unrecognised(failure: &ToolFailure, text: &str) -> Verdict<AptRepair> {
    let seen = error_lines(text)
        .next()
        .map(str::to_string)
        .or_else(|| failure.tail(1).pop())
        .unwrap_or_else(|| "no output".into());
    Verdict::Transient(format!(
        "unrecognised failure (exit {}): {}",
        failure.code,
        seen.trim()
    ))
}

/// Who holds the apt/dpkg lock, from `It is held by X.` or `locked by another X`.
fn lock_holder(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.split_once("It is held by ")
            .map(|(_, h)| h.trim().trim_end_matches('.').to_string())
            .or_else(|| {
                l.split_once("locked by another ")
                    .map(|(_, h)| h.trim().to_string())
            })
    })
}

/// Whether the command line is a `dpkg --configure` run (our repair).
fn is_dpkg_configure(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.contains(&"--configure") && words.iter().any(|w| *w == "dpkg" || w.ends_with("/dpkg"))
}

/// Lines that carry apt's or dpkg's own error (`E: `, `W: `, `dpkg: error`).
fn error_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: ") || l.starts_with("dpkg: error"))
}

/// The package in dpkg's `dpkg: error processing package X (--configure):` line.
fn processing_package(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.split_once("error processing package ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(|p| format!("`{p}`"))
    })
}

/// The text between `prefix` and the next `'`.
fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.split_once(prefix)
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(v, _)| v.to_string())
    })
}

/// The packages of every `E: Unable to locate package X` line.
fn unable_to_locate(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once("Unable to locate package "))
        .filter_map(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        .collect();
    names.dedup();
    names
}

/// One `Failed to fetch URL  DETAIL` line.
#[derive(Debug)]
struct FetchFailure {
    /// `host` or `host:port` of the URL.
    host: String,
    /// The HTTP status, when the detail starts with one (`503  Service Unavailable`).
    status: Option<u16>,
    /// The rest of the line, without apt's `[IP: ...]` suffix.
    detail: String,
}

impl FetchFailure {
    fn is_network(&self) -> bool {
        [
            "Temporary failure resolving",
            // NXDOMAIN: more likely a wrong host name than a hiccup, but a flapping resolver
            // says it too; we retry it like the rest (docs/failures.md, apt-get).
            "Could not resolve",
            "Could not connect",
            "Connection timed out",
            "connection timed out",
            "Connection failed",
            "Connection reset",
            "Could not wait for server fd",
            "Error reading from server",
            "Unable to connect",
            // apt 2.6's word for a connection reset in the middle of a body.
            "Undetermined Error",
        ]
        .iter()
        .any(|n| self.detail.contains(n))
    }

    fn describe(&self) -> String {
        if self.status.is_some()
            || !self
                .detail
                .contains(self.host.split(':').next().unwrap_or(""))
        {
            format!("{} from {}", self.detail, self.host)
        } else {
            self.detail.clone()
        }
    }
}

fn fetch_failures(text: &str) -> Vec<FetchFailure> {
    text.lines()
        .filter_map(|l| l.split_once("Failed to fetch "))
        .filter_map(|(_, rest)| {
            let (url, detail) = rest.split_once(char::is_whitespace)?;
            let detail = detail.trim();
            let detail = match detail.rfind(" [IP: ") {
                Some(i) => &detail[..i],
                None => detail,
            };
            let status = detail
                .split_whitespace()
                .next()
                .filter(|w| w.len() == 3)
                .and_then(|w| w.parse::<u16>().ok());
            // `503  Service Unavailable` -> `503 Service Unavailable`.
            let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(FetchFailure {
                host: url_host(url),
                status,
                detail,
            })
        })
        .collect()
}

/// `host[:port]` of `scheme://[user@]host[:port]/path`, or the whole text when it is not a URL.
pub(crate) fn url_host(url: &str) -> String {
    em_retry::url::authority(url).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_lines_are_parsed() {
        let f = fetch_failures(
            "E: Failed to fetch http://127.0.0.1:18765/503/repo/./InRelease  503  Service Unavailable [IP: 127.0.0.1 18765]\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].host, "127.0.0.1:18765");
        assert_eq!(f[0].status, Some(503));
        assert_eq!(
            f[0].describe(),
            "503 Service Unavailable from 127.0.0.1:18765"
        );
    }

    #[test]
    fn a_killed_dpkg_is_repaired_with_configure_pending() {
        let f = ToolFailure::new(
            "apt-get install -y em-fixture-interrupted",
            100,
            "",
            "E: Sub-process /usr/bin/dpkg exited unexpectedly\n",
        );
        assert!(matches!(
            classify(&f, &ClassifyContext::fresh()),
            Verdict::Repairable(AptRepair::ConfigurePending, _)
        ));
    }

    #[test]
    fn hosts() {
        assert_eq!(url_host("http://deb.example.org/debian"), "deb.example.org");
        assert_eq!(url_host("https://u:p@h:8080/x"), "h:8080");
        assert_eq!(url_host("cdrom:[Debian]/"), "cdrom:[Debian]");
    }
}
