//! What `cargo xtask rootfs` compares before an install and after its remove: dpkg's
//! selections and package states, the npm globals, the pip packages, the files under the
//! paths an extension touches (with mode and owner, and what is in those under /etc and
//! /home); and the difference, as a short report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::rootfs_chroot::Tree;

/// Paths every extension may write to, listed whatever its manifest says.
pub const COMMON_PATHS: [&str; 5] = [
    "/usr/local",
    "/opt",
    "/etc/profile.d",
    "/etc/apt/sources.list.d",
    "/etc/apt/keyrings",
];

/// One section of a snapshot: a name and the shell command that prints its lines.
const SECTIONS: [(&str, &str); 4] = [
    ("selections", "dpkg --get-selections"),
    (
        "packages",
        r"dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'",
    ),
    (
        "npm",
        "if command -v npm >/dev/null; then npm ls -g --depth=0 --parseable; fi",
    ),
    (
        "pip",
        "if python3 -m pip --version >/dev/null 2>&1; then \
         python3 -m pip list --format=freeze --disable-pip-version-check; fi",
    ),
];

/// The lines of each section, sorted, whitespace normalised.
pub struct Snapshot {
    sections: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Snapshot {
    /// Takes every section in `tree`; `paths` are listed (recursively) in the `files` one.
    pub fn take(tree: &Tree, paths: &BTreeSet<String>) -> Result<Self, String> {
        let mut sections = BTreeMap::new();
        for (name, script) in SECTIONS {
            sections.insert(name, lines_of(tree, name, script)?);
        }
        let quoted: Vec<String> = paths.iter().map(|p| format!("'{p}'")).collect();
        let files = format!(
            "for p in {}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then \
             find \"$p\" -xdev -printf '%y %m %u:%g %p\\n'; fi; done",
            quoted.join(" ")
        );
        sections.insert("files", lines_of(tree, "files", &files)?);
        // What is in the files an extension edits in place (a managed block in
        // /etc/tmux.conf, a user's ~/.bashrc): the listing shows their mode, not that a
        // block was left behind. Under /etc and /home only: the trees under /usr/local
        // and /opt hold thousands of files that steps make whole, never edit.
        let edited: Vec<&String> = quoted
            .iter()
            .filter(|p| p.starts_with("'/etc") || p.starts_with("'/home"))
            .collect();
        let contents = format!(
            "for p in {}; do if [ -e \"$p\" ]; then \
             find \"$p\" -xdev -type f -exec sha256sum {{}} +; fi; done",
            edited
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        sections.insert("contents", lines_of(tree, "contents", &contents)?);
        Ok(Self { sections })
    }

    /// Writes one file per section into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, lines) in &self.sections {
            let mut text = lines.iter().cloned().collect::<Vec<_>>().join("\n");
            text.push('\n');
            let path = dir.join(format!("{name}.txt"));
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn lines_of(tree: &Tree, name: &str, script: &str) -> Result<BTreeSet<String>, String> {
    let output = tree.run(script)?;
    if !output.status.success() {
        return Err(format!(
            "snapshot `{name}` failed ({}): {}",
            output.status,
            crate::rootfs_chroot::tail(&output.stderr, 5)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect())
}

/// The difference between two snapshots, section by section.
pub struct Diff {
    /// Lines only in the snapshot after (`+`) or only in the one before (`-`).
    sections: Vec<(&'static str, Vec<String>, Vec<String>)>,
    packages: PackageChanges,
}

/// dpkg's view of the difference, by package name.
#[derive(Default)]
struct PackageChanges {
    /// Not there before, fully installed after.
    left_installed: Vec<String>,
    /// Not there before, config files left after (`rc`).
    left_config_files: Vec<String>,
    /// There before, gone or not installed after.
    gone: Vec<String>,
    /// Installed before and after, at another version or state.
    changed: Vec<String>,
}

impl Diff {
    pub fn between(before: &Snapshot, after: &Snapshot) -> Self {
        let empty = BTreeSet::new();
        let sections = after
            .sections
            .iter()
            .map(|(name, after_lines)| {
                let before_lines = before.sections.get(name).unwrap_or(&empty);
                let added = after_lines.difference(before_lines).cloned().collect();
                let removed = before_lines.difference(after_lines).cloned().collect();
                (*name, added, removed)
            })
            .collect();
        let packages = PackageChanges::between(
            before.sections.get("packages").unwrap_or(&empty),
            after.sections.get("packages").unwrap_or(&empty),
        );
        Self { sections, packages }
    }

    pub fn is_empty(&self) -> bool {
        self.sections
            .iter()
            .all(|(_, added, removed)| added.is_empty() && removed.is_empty())
    }

    /// Every differing line, `+` after / `-` before, grouped by section (for diff.txt).
    pub fn full_text(&self) -> String {
        let mut text = String::new();
        for (name, added, removed) in &self.sections {
            for line in removed {
                let _ = writeln!(text, "{name}: - {line}");
            }
            for line in added {
                let _ = writeln!(text, "{name}: + {line}");
            }
        }
        text
    }

    /// The short report: package names by kind of leftover, then the other sections'
    /// lines, at most `limit` of each.
    pub fn summary(&self, limit: usize) -> String {
        let mut text = String::new();
        let p = &self.packages;
        for (what, names) in [
            ("left installed", &p.left_installed),
            ("left as config files (rc)", &p.left_config_files),
            ("gone (were there before)", &p.gone),
            ("changed", &p.changed),
        ] {
            if !names.is_empty() {
                let _ = writeln!(
                    text,
                    "    packages {what} ({}): {}",
                    names.len(),
                    names.join(" ")
                );
            }
        }
        for (name, added, removed) in &self.sections {
            if matches!(*name, "selections" | "packages") {
                continue;
            }
            for (sign, lines) in [("-", removed), ("+", added)] {
                for line in lines.iter().take(limit) {
                    let _ = writeln!(text, "    {name} {sign} {line}");
                }
                if lines.len() > limit {
                    let _ = writeln!(
                        text,
                        "    {name} {sign} ... and {} more",
                        lines.len() - limit
                    );
                }
            }
        }
        text
    }
}

impl PackageChanges {
    /// From `dpkg-query -W` lines: `name version status`.
    fn between(before: &BTreeSet<String>, after: &BTreeSet<String>) -> Self {
        let before = by_name(before);
        let after = by_name(after);
        let mut changes = Self::default();
        for (name, (version, status)) in &after {
            match before.get(name) {
                None if status.starts_with("ii") => changes.left_installed.push(name.clone()),
                None if status.starts_with("rc") => changes.left_config_files.push(name.clone()),
                None => changes.changed.push(format!("{name} (new, {status})")),
                Some((v, s)) if v != version || s != status => changes
                    .changed
                    .push(format!("{name} {v} {s} -> {version} {status}")),
                Some(_) => {}
            }
        }
        for (name, (_, status)) in &before {
            let installed_after = after.get(name).is_some_and(|(_, s)| s.starts_with("ii"));
            if status.starts_with("ii") && !installed_after {
                changes.gone.push(name.clone());
            }
        }
        changes
    }
}

/// `name -> (version, status)`; a package with config files only has no version.
fn by_name(lines: &BTreeSet<String>) -> BTreeMap<String, (String, String)> {
    lines
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                [name, version, status] => {
                    Some((name.to_string(), (version.to_string(), status.to_string())))
                }
                [name, status] => Some((name.to_string(), (String::new(), status.to_string()))),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(packages: &[&str], files: &[&str]) -> Snapshot {
        let set = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect();
        let mut sections = BTreeMap::new();
        sections.insert("packages", set(packages));
        sections.insert("files", set(files));
        Snapshot { sections }
    }

    #[test]
    fn sorts_leftover_packages_by_kind() {
        let before = snapshot(&["dpkg 1.21 ii", "tar 1.34 ii"], &["d 755 /opt"]);
        let after = snapshot(
            &[
                "dpkg 1.21 ii",
                "perl 5.36 ii",
                "ca-certificates rc",
                "tar 1.35 ii",
            ],
            &["d 755 /opt", "f 644 /opt/x"],
        );
        let diff = Diff::between(&before, &after);
        assert!(!diff.is_empty());
        let summary = diff.summary(10);
        assert!(
            summary.contains("packages left installed (1): perl"),
            "{summary}"
        );
        assert!(summary.contains("(rc) (1): ca-certificates"), "{summary}");
        assert!(summary.contains("tar 1.34 ii -> 1.35 ii"), "{summary}");
        assert!(summary.contains("files + f 644 /opt/x"), "{summary}");
    }

    #[test]
    fn equal_snapshots_have_no_diff() {
        let a = snapshot(&["dpkg 1.21 ii"], &["d 755 /opt"]);
        let b = snapshot(&["dpkg 1.21 ii"], &["d 755 /opt"]);
        assert!(Diff::between(&a, &b).is_empty());
        assert_eq!(Diff::between(&a, &b).full_text(), "");
    }
}
