//! Checks of `[extension.requirements]` before anything is installed: free disk space under
//! `/` (`disk_mb`) and host names that must resolve (`domains`). A missing requirement
//! stops the run before it changes anything; with `--keep-going`, an unresolvable domain is
//! reported and the install goes on (the download step will say more if it matters).

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

/// Checks the requirements of every extension of `plan` that has work to do.
pub async fn check(plan: &Plan, keep_going: bool) -> Findings {
    let mut findings = Findings::default();
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
                findings.fatal.push((
                    e.name().to_string(),
                    format!(
                        "needs {mb} MB free under / ({needed} MB for this run); {free} MB are free"
                    ),
                ));
            }
        }
    }
    for e in plan.entries.iter().filter(|e| e.action.is_work()) {
        for domain in &e.manifest.requirements.domains {
            if !resolves(&domain.value).await {
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
    fn reads_the_available_column_of_df() {
        let text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/vda        263174212  11245032 238476776       5% /\n";
        assert_eq!(parse_df(text), Some(238476776 / 1024));
        assert_eq!(parse_df("garbage"), None);
    }

    #[tokio::test]
    async fn localhost_resolves_and_an_invalid_name_does_not() {
        assert!(resolves("localhost").await);
        assert!(!resolves("em-fixture.invalid").await);
    }
}
