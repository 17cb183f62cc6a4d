//! Reading npm's failures: the `npm error code X` line first, the text around it for the
//! reason. The exit code says little (docs/failures.md trap 6: `Z_DATA_ERROR` exits 253,
//! ENOTEMPTY 217, a reset mid-tarball 152).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use em_exec::{ToolFailure, Verdict};

/// A repair npm failures call for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NpmRepair {
    /// `npm cache verify` (drops entries that fail their checksum), then
    /// `npm cache clean --force`: a corrupt tarball or packument in the cache makes every
    /// later install fail the same way.
    CacheVerify,
    /// Removes the stale `.<name>-<hash>` directory that an interrupted global install
    /// left next to `<prefix>/lib/node_modules/<name>` (npm renames the installed package
    /// to it, and the rename fails with ENOTEMPTY while it exists). The path is the stale
    /// directory named in the message; the repair refuses anything outside the global
    /// prefix's `lib/node_modules`.
    RemoveStaleTemp(PathBuf),
}

impl NpmRepair {
    /// A short stable name, for reports and the fixtures' `repair:` field.
    pub fn name(&self) -> &'static str {
        match self {
            NpmRepair::CacheVerify => "npm-cache-verify",
            NpmRepair::RemoveStaleTemp(_) => "npm-remove-stale-temp",
        }
    }
}

impl fmt::Display for NpmRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpmRepair::CacheVerify => f.write_str("npm cache verify + npm cache clean --force"),
            NpmRepair::RemoveStaleTemp(path) => {
                write!(f, "removing the stale {}", path.display())
            }
        }
    }
}

/// The message lines of npm's error block, without their `npm error ` / `npm ERR! ` prefix.
fn error_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| {
        l.strip_prefix("npm error ")
            .or_else(|| l.strip_prefix("npm ERR! "))
            .or_else(|| (l == "npm error" || l == "npm ERR!").then_some(""))
    })
}

/// The `X` of the first `npm error code X` (npm 10+) or `npm ERR! code X` (older) line.
pub fn error_code(text: &str) -> Option<&str> {
    error_lines(text)
        .find_map(|l| l.strip_prefix("code "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// The host (and port) of the first `http(s)://` URL in the error lines, or of npm's
/// `for host \`h:p\`` (EIDLETIMEOUT).
fn host_in(text: &str) -> Option<String> {
    for line in error_lines(text) {
        if let Some(start) = line.find("http://").or_else(|| line.find("https://")) {
            return host_of(&line[start..]);
        }
        if let Some((_, rest)) = line.split_once("for host `") {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// `h:p` of a URL: no scheme, no credentials, no path.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let host = em_retry::url::authority(em_retry::url::leading(url));
    (!host.is_empty()).then(|| host.to_string())
}

/// ` from h:p` when the host is known.
fn from_host(text: &str) -> String {
    host_in(text)
        .map(|h| format!(" from {h}"))
        .unwrap_or_default()
}

/// `503 Service Unavailable` of a line `503 Service Unavailable - GET http://...`.
fn http_status(text: &str) -> Option<String> {
    error_lines(text).find_map(|l| {
        let (status, _) = l.split_once(" - ")?;
        let code = status.split_whitespace().next()?;
        (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
            .then(|| status.trim().to_string())
    })
}

/// The package of an E404: `The requested resource 'x@*' could not be found`, else the
/// last path segment of the `GET` URL (`@scope%2fname` decoded).
fn missing_package(text: &str) -> Option<String> {
    for line in error_lines(text) {
        if let Some((_, rest)) = line.split_once("requested resource '") {
            return rest.split('\'').next().map(str::to_string);
        }
    }
    error_lines(text).find_map(|l| {
        let (_, url) = l.split_once(" - GET ")?;
        let segment = url.trim().trim_end_matches('/').rsplit('/').next()?;
        Some(
            segment
                .replace("%2f", "/")
                .replace("%2F", "/")
                .replace("%40", "@"),
        )
    })
}

/// The first error line that is not the `code`/`errno`/`syscall` bookkeeping or the log
/// pointer: npm's own sentence for the error.
fn first_message(text: &str) -> Option<&str> {
    error_lines(text).map(str::trim).find(|l| {
        !l.is_empty()
            && ![
                "code ",
                "errno ",
                "syscall ",
                "path ",
                "dest ",
                "A complete log",
            ]
            .iter()
            .any(|p| l.starts_with(p))
    })
}

/// `description (CODE) from host`, the shape of our network reasons.
fn network_reason(what: &str, code: &str, text: &str) -> String {
    match host_in(text) {
        Some(host) => format!("{what} ({code}) at {host}"),
        None => format!("{what} ({code})"),
    }
}

/// Finds the stale `.<name>-<hash>` directory in an ENOTEMPTY message: the target of
/// `rename '<from>' -> '<to>'`, or the `dest` line (`npm error dest <path>`, or
/// `dest: '<path>'` in the dumped error object). Only a dotted directory directly in a
/// `node_modules` (or a `node_modules/@scope`) qualifies.
pub fn stale_temp_in(text: &str) -> Option<PathBuf> {
    let mut candidates: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some((_, rename)) = line.split_once("rename '")
            && let Some((from, rest)) = rename.split_once("' -> '")
        {
            candidates.push(rest.split('\'').next().unwrap_or(""));
            candidates.push(from);
        }
        let line = line
            .strip_prefix("npm error ")
            .or_else(|| line.strip_prefix("npm ERR! "))
            .unwrap_or(line)
            .trim();
        if let Some(dest) = line.strip_prefix("dest: '") {
            candidates.push(dest.split('\'').next().unwrap_or(""));
        } else if let Some(dest) = line.strip_prefix("dest ") {
            candidates.push(dest.trim());
        }
    }
    candidates
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_stale_temp_shape(p))
}

/// `/.../node_modules/.<name>-<suffix>` or `/.../node_modules/@scope/.<name>-<suffix>`,
/// absolute, without `..`.
pub(crate) fn is_stale_temp_shape(path: &Path) -> bool {
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return false;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(base) = stale_base(name) else {
        return false;
    };
    if base.is_empty() {
        return false;
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    let parent_name = parent.file_name().and_then(|n| n.to_str()).unwrap_or("");
    parent_name == "node_modules"
        || (parent_name.starts_with('@')
            && parent
                .parent()
                .and_then(|g| g.file_name())
                .is_some_and(|g| g == "node_modules"))
}

/// `name` of `.name-XXXXXXXX` (npm's retired-package directory: a dot, the package's
/// directory name, a dash, a short hash that may itself contain `-`).
pub(crate) fn stale_base(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix('.')?;
    // npm's suffix is 8 characters; fall back to the last dash for other lengths.
    if rest.len() > 9 && rest.as_bytes()[rest.len() - 9] == b'-' {
        return Some(&rest[..rest.len() - 9]);
    }
    rest.rsplit_once('-').map(|(base, _)| base)
}

/// What to do about a certificate npm does not trust. A retry cannot help, and turning
/// verification off (`strict-ssl=false`) is never the answer.
const TLS_HINT: &str = "npm trusts the CAs of its `cafile` setting (`npm config get cafile`) \
     and of NODE_EXTRA_CA_CERTS: behind a TLS-inspecting proxy, add the proxy's CA to the system \
     store (update-ca-certificates) and set cafile=/etc/ssl/certs/ca-certificates.crt in \
     /etc/npmrc; check the clock for an expired certificate; never strict-ssl=false";

/// Reads a failed npm run. Pure: exit code and text only.
///
/// The classification table is in the crate documentation; [`error_code`] is what decides,
/// the exit code is only used when npm printed no code at all. The code is offered to the
/// families below in this order; the first that knows it decides.
pub fn classify(failure: &ToolFailure) -> Verdict<NpmRepair> {
    let text = failure.text();
    let text = text.as_str();
    let Some(code) = error_code(text) else {
        return classify_without_code(failure, text);
    };
    network(code, text)
        .or_else(|| corrupt_download(code, text))
        .or_else(|| directory_in_the_way(code, text))
        .or_else(|| not_found(code, text))
        .or_else(|| untrusted_certificate(code, text))
        .or_else(|| registry_refusal(code, text))
        .or_else(|| unsatisfiable_request(code, text))
        .or_else(|| missing_permission_or_space(code, text))
        .or_else(|| refused_package(code, text))
        .or_else(|| classify_http_code(code, text))
        .unwrap_or_else(|| unrecognised_code(code, text))
}

/// The network failed on the way (reset, refused, DNS, timeout, stall): worth another try.
fn network(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    let what = match code {
        "ECONNRESET" => {
            if text.contains("network aborted") {
                "download aborted mid-transfer"
            } else if text.contains("socket hang up") {
                "connection closed without an answer"
            } else {
                "connection reset"
            }
        }
        "ECONNREFUSED" => "connection refused",
        "EAI_AGAIN" => "temporary DNS failure",
        // NXDOMAIN: usually a wrong host, sometimes a resolver hiccup. Transient, so that
        // the retries of this source run out and the next mirror is tried (a permanent
        // verdict would stop the mirror chain); see the crate documentation.
        "ENOTFOUND" => "host not found",
        "ETIMEDOUT" | "ESOCKETTIMEDOUT" | "ERR_SOCKET_TIMEOUT" => "connection timed out",
        "EIDLETIMEOUT" => "transfer stalled",
        "FETCH_ERROR" => {
            if text.contains("network timeout") {
                "network timeout"
            } else {
                "fetch failed"
            }
        }
        "EPIPE" | "ECONNABORTED" | "EHOSTUNREACH" | "ENETUNREACH" | "ENETDOWN" | "EPROTO" => {
            "network error"
        }
        _ => return None,
    };
    Some(Verdict::Transient(network_reason(what, code, text)))
}

/// A tarball failed its integrity check or does not unpack: the cache may hold it.
fn corrupt_download(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    match code {
        "EINTEGRITY" => Some(Verdict::Repairable(
            NpmRepair::CacheVerify,
            format!(
                "a downloaded tarball failed its integrity check (EINTEGRITY){}",
                from_host(text)
            ),
        )),
        "Z_DATA_ERROR" | "Z_BUF_ERROR" | "TAR_BAD_ARCHIVE" => Some(Verdict::Repairable(
            NpmRepair::CacheVerify,
            format!("a tarball is corrupt ({code})"),
        )),
        _ => None,
    }
}

/// ENOTEMPTY: an interrupted install's leftover (removable), or another directory in the
/// way (permanent).
fn directory_in_the_way(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    if code != "ENOTEMPTY" {
        return None;
    }
    Some(match stale_temp_in(text) {
        Some(path) => Verdict::Repairable(
            NpmRepair::RemoveStaleTemp(path.clone()),
            format!(
                "an interrupted install left {} behind (ENOTEMPTY)",
                path.display()
            ),
        ),
        None => Verdict::Permanent(
            format!(
                "a directory is in the way (ENOTEMPTY): {}",
                first_message(text).unwrap_or("directory not empty")
            ),
            Some("remove the directory named in the message, then try again".into()),
        ),
    })
}

/// The registry has no such package (E404), or no version matching the range (ETARGET).
fn not_found(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    match code {
        "E404" => {
            let what = missing_package(text).unwrap_or_else(|| "the package".into());
            Some(Verdict::Permanent(
                format!("package `{what}` not found{} (E404)", from_host(text)),
                Some(
                    "check the name; a private registry also answers 404 when its token is missing"
                        .into(),
                ),
            ))
        }
        "ETARGET" => {
            let wanted = error_lines(text)
                .find_map(|l| l.split_once("No matching version found for "))
                .map(|(_, w)| w.trim().trim_end_matches('.').to_string());
            Some(Verdict::Permanent(
                match wanted {
                    Some(w) => format!("no version matches `{w}` (ETARGET)"),
                    None => "no matching version found (ETARGET)".to_string(),
                },
                Some("`npm view <name> versions` lists the published versions".into()),
            ))
        }
        _ => None,
    }
}

/// npm does not trust the registry's TLS certificate: what the check said, and for which
/// host.
fn untrusted_certificate(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    if !matches!(
        code,
        "SELF_SIGNED_CERT_IN_CHAIN"
            | "DEPTH_ZERO_SELF_SIGNED_CERT"
            | "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
            | "UNABLE_TO_GET_ISSUER_CERT"
            | "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
            | "CERT_UNTRUSTED"
            | "CERT_SIGNATURE_FAILURE"
            | "CERT_HAS_EXPIRED"
            | "CERT_NOT_YET_VALID"
            | "ERR_TLS_CERT_ALTNAME_INVALID"
    ) {
        return None;
    }
    let said = error_lines(text)
        .find_map(|l| l.split_once("reason: "))
        .map(|(_, r)| r.trim().to_string())
        .unwrap_or_else(|| code.to_lowercase().replace('_', " "));
    let host = host_in(text).unwrap_or_else(|| "the registry".into());
    Some(Verdict::Permanent(
        format!("the TLS certificate of {host} is not trusted: {said} ({code})"),
        Some(TLS_HINT.into()),
    ))
}

/// The registry wants credentials (E401) or refuses the ones given (E403).
fn registry_refusal(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    match code {
        "E401" => Some(Verdict::Permanent(
            format!(
                "the registry asks for credentials{} (E401)",
                from_host(text)
            ),
            Some("configure a token for it (`//host/:_authToken=...` in .npmrc)".into()),
        )),
        "E403" => Some(Verdict::Permanent(
            format!("access forbidden{} (E403)", from_host(text)),
            Some("the token lacks access, or a registry policy forbids this package".into()),
        )),
        _ => None,
    }
}

/// npm will not do what was asked: a command line it rejects, or peer dependencies that
/// conflict.
fn unsatisfiable_request(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    match code {
        "EUSAGE" => Some(Verdict::Permanent(
            format!(
                "npm rejected the command line (EUSAGE): {}",
                first_message(text).unwrap_or("usage error")
            ),
            None,
        )),
        "ERESOLVE" => Some(Verdict::Permanent(
            "conflicting peer dependencies (ERESOLVE)".to_string(),
            Some("install a version whose peer dependencies agree, or install it alone".into()),
        )),
        _ => None,
    }
}

/// This machine refuses: the global prefix is not writable, or the disk is full.
fn missing_permission_or_space(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    match code {
        "EACCES" | "EPERM" => {
            let path = error_lines(text)
                .find_map(|l| l.strip_prefix("path "))
                .map(|p| format!(": {}", p.trim()))
                .unwrap_or_default();
            Some(Verdict::Permanent(
                format!("permission denied{path} ({code})"),
                Some(
                    "the global prefix is not writable: run as root, or set a prefix you own \
                     (npm_config_prefix / NpmConfig::prefix)"
                        .into(),
                ),
            ))
        }
        "ENOSPC" => Some(Verdict::Permanent(
            "no space left on device (ENOSPC)".to_string(),
            Some("free some space; `npm cache clean --force` empties npm's cache".into()),
        )),
        _ => None,
    }
}

/// The package itself is refused (wrong platform or engine, invalid name, tag or JSON, no
/// versions, a bad override): npm's own sentence is the reason.
fn refused_package(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    matches!(
        code,
        "EBADPLATFORM"
            | "EBADENGINE"
            | "EINVALIDPACKAGENAME"
            | "EINVALIDTAGNAME"
            | "EJSONPARSE"
            | "ENOVERSIONS"
            | "EOVERRIDE"
    )
    .then(|| {
        Verdict::Permanent(
            format!(
                "{} ({code})",
                first_message(text).unwrap_or("npm refused the package")
            ),
            None,
        )
    })
}

/// An error code we have not met: SPEC 3, unclassified errors retry.
fn unrecognised_code(code: &str, text: &str) -> Verdict<NpmRepair> {
    Verdict::Transient(format!(
        "{} ({code})",
        first_message(text).unwrap_or("npm failed")
    ))
}

/// `E` + an HTTP status: 408, 429 and 5xx transient, any other 4xx permanent.
fn classify_http_code(code: &str, text: &str) -> Option<Verdict<NpmRepair>> {
    let status: u16 = code.strip_prefix('E')?.parse().ok()?;
    let described = http_status(text).unwrap_or_else(|| format!("HTTP {status}"));
    let reason = format!("{described}{}", from_host(text));
    match status {
        408 | 429 | 500..=599 => Some(Verdict::Transient(reason)),
        400..=499 => Some(Verdict::Permanent(reason, None)),
        _ => None,
    }
}

/// npm printed no code line: a crash, a kill, or an old npm. Read what is there.
fn classify_without_code(failure: &ToolFailure, text: &str) -> Verdict<NpmRepair> {
    if text.contains("integrity checksum failed") {
        return Verdict::Repairable(
            NpmRepair::CacheVerify,
            "a downloaded tarball failed its integrity check".into(),
        );
    }
    if text.contains("ENOTEMPTY")
        && let Some(path) = stale_temp_in(text)
    {
        return Verdict::Repairable(
            NpmRepair::RemoveStaleTemp(path.clone()),
            format!(
                "an interrupted install left {} behind (ENOTEMPTY)",
                path.display()
            ),
        );
    }
    if text.contains("No matching version found for") {
        return Verdict::Permanent(
            "no matching version found".into(),
            Some("`npm view <name> versions` lists the published versions".into()),
        );
    }
    if text.contains("network request failed") || text.contains("network request to") {
        return Verdict::Transient("network request failed".into());
    }
    // Killed (124 from `timeout`, 128+n by a signal) or silent: SPEC 3, unclassified
    // errors retry.
    let last = failure.tail(1).pop();
    Verdict::Transient(match last {
        Some(line) => format!("npm exited {} without an error code: {line}", failure.code),
        None => format!("npm exited {} without an error code", failure.code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(code: i32, stderr: &str) -> Verdict<NpmRepair> {
        classify(&ToolFailure::new("npm install -g x", code, "", stderr))
    }

    #[test]
    fn the_code_line_decides_not_the_exit_code() {
        // docs/failures.md trap 6: Z_DATA_ERROR exits 253.
        let v = verdict(253, "npm error code Z_DATA_ERROR\nnpm error errno -3\n");
        assert_eq!(v.class(), "repairable");
        let v = verdict(
            0,
            "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.example.org/nope\n",
        );
        assert_eq!(v.class(), "permanent");
        assert_eq!(error_code("npm ERR! code ETARGET\n"), Some("ETARGET"));
    }

    #[test]
    fn reasons_name_the_host_and_the_status() {
        let v = verdict(
            1,
            "npm error code E503\nnpm error 503 Service Unavailable - GET http://127.0.0.1:8080/npm/x\n",
        );
        assert_eq!(
            v,
            Verdict::Transient("503 Service Unavailable from 127.0.0.1:8080".into())
        );
        let v = verdict(
            1,
            "npm error code E404\nnpm error 404 Not Found - GET https://user:pw@r.example.org/@scope%2fthing\n",
        );
        assert_eq!(
            v.reason(),
            "package `@scope/thing` not found from r.example.org (E404)"
        );
    }

    #[test]
    fn other_4xx_are_permanent_408_and_5xx_transient() {
        assert_eq!(verdict(1, "npm error code E400\n").class(), "permanent");
        assert_eq!(verdict(1, "npm error code E408\n").class(), "transient");
        assert_eq!(verdict(1, "npm error code E502\n").class(), "transient");
        assert_eq!(verdict(1, "npm error code E599\n").class(), "transient");
    }

    #[test]
    fn unknown_codes_and_silence_retry() {
        assert_eq!(
            verdict(1, "npm error code EWHATEVER\nnpm error something odd\n").reason(),
            "something odd (EWHATEVER)"
        );
        assert_eq!(
            verdict(124, "").reason(),
            "npm exited 124 without an error code"
        );
    }

    #[test]
    fn enotempty_names_the_stale_directory() {
        // The shape npm 10 prints (arborist reify renaming the old package away).
        let text = "npm error code ENOTEMPTY\n\
            npm error syscall rename\n\
            npm error path /usr/local/lib/node_modules/typescript\n\
            npm error dest /usr/local/lib/node_modules/.typescript-KpHcVOmw\n\
            npm error errno -39\n\
            npm error ENOTEMPTY: directory not empty, rename '/usr/local/lib/node_modules/typescript' -> '/usr/local/lib/node_modules/.typescript-KpHcVOmw'\n";
        assert_eq!(
            verdict(217, text),
            Verdict::Repairable(
                NpmRepair::RemoveStaleTemp("/usr/local/lib/node_modules/.typescript-KpHcVOmw".into()),
                "an interrupted install left /usr/local/lib/node_modules/.typescript-KpHcVOmw behind (ENOTEMPTY)".into()
            )
        );
        // Older npm: only the dumped error object.
        let text = "npm ERR! code ENOTEMPTY\nnpm ERR!   dest: '/usr/lib/node_modules/@scope/.tool-a_b-c9Zz'\n";
        assert_eq!(
            verdict(1, text),
            Verdict::Repairable(
                NpmRepair::RemoveStaleTemp("/usr/lib/node_modules/@scope/.tool-a_b-c9Zz".into()),
                "an interrupted install left /usr/lib/node_modules/@scope/.tool-a_b-c9Zz behind (ENOTEMPTY)".into()
            )
        );
    }

    #[test]
    fn enotempty_outside_node_modules_is_not_repaired() {
        for text in [
            "npm error code ENOTEMPTY\nnpm error dest /home/me/.config-abcdefgh\n",
            "npm error code ENOTEMPTY\nnpm error dest /usr/lib/node_modules/../../.x-abcdefgh\n",
            "npm error code ENOTEMPTY\nnpm error dest node_modules/.x-abcdefgh\n",
            "npm error code ENOTEMPTY\nnpm error dest /usr/lib/node_modules/typescript\n",
        ] {
            assert_eq!(verdict(217, text).class(), "permanent", "{text}");
        }
    }

    #[test]
    fn stale_base_strips_npms_hash() {
        assert_eq!(stale_base(".typescript-KpHcVOmw"), Some("typescript"));
        assert_eq!(
            stale_base(".em-fixture-hello-a-b_c-d1"),
            Some("em-fixture-hello")
        );
        assert_eq!(stale_base(".x-1"), Some("x"));
        assert_eq!(stale_base("typescript"), None);
    }
}
