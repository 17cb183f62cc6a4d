//! Checks of `[extension.requirements]` before anything is installed: free disk space under
//! `/` (`disk_mb`), the machine's memory (`memory_mb`, MemTotal of /proc/meminfo), its
//! operating system (`os`, from os-release) and host names that must resolve (`domains`). A missing requirement
//! stops the run before it changes anything; with `--keep-going`, an unresolvable domain is
//! reported and the install goes on, and a download step whose every source is on a host
//! that did not resolve fails at once, as permanent, with the same hint
//! ([`Findings::unresolved`], [`unresolved_hint`]): retrying a name that does not resolve
//! only spends the policy's attempts and delays.

use std::collections::BTreeSet;
use std::time::Duration;

use em_exec::{Cmd, OutputMode};

use crate::plan::Plan;

/// What preflight found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Problems that stop the run: (extension, message).
    pub fatal: Vec<(String, String)>,
    /// Problems reported but not fatal: (extension, message).
    pub warnings: Vec<(String, String)>,
    /// The `requirements.domains` that did not resolve.
    pub unresolved: BTreeSet<String>,
    /// Some extension needs more free disk than there is.
    pub short_of_disk: bool,
    /// Some extension needs more memory or another operating system.
    pub machine_unfit: bool,
}

impl Findings {
    /// What to do about the fatal findings: free disk space, and or the hosts' hint.
    pub fn hint(&self) -> String {
        let mut parts = Vec::new();
        if self.short_of_disk {
            parts.push("free disk space under /".to_string());
        }
        if self.machine_unfit {
            parts.push(
                "use a machine that meets [extension.requirements] (memory_mb, os), or leave that extension out"
                    .to_string(),
            );
        }
        if !self.unresolved.is_empty() {
            parts.push(unresolved_hint(&self.unresolved));
            parts.push("--keep-going installs despite unresolvable domains".to_string());
        }
        parts.join("; ")
    }
}

/// What to do about hosts that do not resolve: name them, and the ways around them.
pub fn unresolved_hint(hosts: &BTreeSet<String>) -> String {
    let names: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
    let (names, verb) = match names.len() {
        1 => (names[0].clone(), "does"),
        _ => (names.join(", "), "do"),
    };
    format!(
        "{names} {verb} not resolve: fix name resolution (DNS, /etc/resolv.conf, the proxy), \
         or reach a host that can be reached instead: `[mirrors]` in the configuration \
         (apt, npm, pip) or the download step's `mirrors`"
    )
}

/// The host name of a URL, without user info, port or `[]`: what `requirements.domains`
/// names.
pub fn host_name(url: &str) -> &str {
    em_retry::url::split(url).host()
}

/// Free space under `/` in MiB, from `df -Pk /` (POSIX output).
async fn free_mb() -> Option<u64> {
    let out = Cmd::tool("df")
        .args(["-Pk", "/"])
        .output(OutputMode::Capture)
        .run()
        .await
        .ok()?;
    parse_df(&out.stdout_text())
}

/// The "Available" column (KiB) of `df -Pk`'s second line, in MiB.
pub fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let available_kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(available_kib / 1024)
}

async fn resolves(domain: &str) -> bool {
    let lookup = tokio::net::lookup_host((domain, 443));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        _ => false,
    }
}

/// MemTotal of /proc/meminfo, in MiB.
fn memory_mb() -> Option<u64> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// The `MemTotal:` line (kB) of /proc/meminfo, in MiB.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The machine's memory and operating system against each extension's `memory_mb` and
/// `os`: what is not met is fatal (installing would not make it so).
fn check_machine(
    plan: &Plan,
    memory: Option<u64>,
    facts: &std::collections::BTreeMap<String, String>,
    findings: &mut Findings,
) {
    let (id, version) = (
        facts.get("os.id").map(String::as_str).unwrap_or("unknown"),
        facts.get("os.version_id").map(String::as_str),
    );
    for e in plan.entries.iter().filter(|e| e.action.is_work()) {
        let req = &e.manifest.requirements;
        if let (Some(need), Some(have)) = (req.memory_mb, memory)
            && have < need
        {
            findings.machine_unfit = true;
            findings.fatal.push((
                e.name().to_string(),
                format!("needs {need} MB of memory; this machine has {have} MB"),
            ));
        }
        if !req.os.is_empty() && !req.os.iter().any(|r| r.matches(id, version)) {
            findings.machine_unfit = true;
            let wanted: Vec<String> = req.os.iter().map(ToString::to_string).collect();
            findings.fatal.push((
                e.name().to_string(),
                format!(
                    "installs on {}; this machine is {id} {}",
                    wanted.join(" or "),
                    version.unwrap_or("(no VERSION_ID)")
                ),
            ));
        }
    }
}

/// Checks the requirements of every extension of `plan` that has work to do. Without
/// `probe_domains` (an offline install, whose sources are all local) no host name is
/// looked up.
pub async fn check(plan: &Plan, keep_going: bool, probe_domains: bool) -> Findings {
    let mut findings = Findings::default();
    check_machine(plan, memory_mb(), em_manifest::facts(), &mut findings);
    let needed: u64 = plan
        .entries
        .iter()
        .filter(|e| e.action.is_work())
        .filter_map(|e| e.manifest.requirements.disk_mb)
        .sum();
    if needed > 0
        && let Some(free) = free_mb().await
        && free < needed
    {
        for e in plan.entries.iter().filter(|e| e.action.is_work()) {
            if let Some(mb) = e.manifest.requirements.disk_mb {
                findings.short_of_disk = true;
                findings.fatal.push((
                    e.name().to_string(),
                    format!(
                        "needs {mb} MB free under / ({needed} MB for this run); {free} MB are free"
                    ),
                ));
            }
        }
    }
    for e in plan
        .entries
        .iter()
        .filter(|e| probe_domains && e.action.is_work())
    {
        for domain in &e.manifest.requirements.domains {
            if findings.unresolved.contains(&domain.value) || !resolves(&domain.value).await {
                findings.unresolved.insert(domain.value.clone());
                let message = format!("`{}` does not resolve from this machine", domain.value);
                if keep_going {
                    findings.warnings.push((e.name().to_string(), message));
                } else {
                    findings.fatal.push((e.name().to_string(), message));
                }
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memtotal() {
        let text = "MemTotal:       24572376 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo(text), Some(24572376 / 1024));
        assert_eq!(parse_meminfo("nothing"), None);
    }

    #[test]
    fn reads_the_available_column_of_df() {
        let text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/vda        263174212  11245032 238476776       5% /\n";
        assert_eq!(parse_df(text), Some(238476776 / 1024));
        assert_eq!(parse_df("garbage"), None);
    }

    #[test]
    fn host_names_of_urls() {
        assert_eq!(
            host_name("https://u:p@dl.example.org:8443/x"),
            "dl.example.org"
        );
        assert_eq!(host_name("http://127.0.0.1:8080/f"), "127.0.0.1");
        assert_eq!(host_name("http://[::1]:80/f"), "::1");
        assert_eq!(host_name("https://dl.example.org"), "dl.example.org");
    }

    #[test]
    fn the_hint_names_each_host_and_the_mirrors() {
        let one = BTreeSet::from(["a.invalid".to_string()]);
        assert!(unresolved_hint(&one).starts_with("`a.invalid` does not resolve: "));
        let two = BTreeSet::from(["a.invalid".to_string(), "b.invalid".to_string()]);
        let hint = unresolved_hint(&two);
        assert!(
            hint.starts_with("`a.invalid`, `b.invalid` do not resolve: "),
            "{hint}"
        );
        assert!(hint.contains("`[mirrors]` in the configuration"), "{hint}");
    }

    #[tokio::test]
    async fn localhost_resolves_and_an_invalid_name_does_not() {
        assert!(resolves("localhost").await);
        assert!(!resolves("em-fixture.invalid").await);
    }
}
