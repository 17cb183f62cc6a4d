//! The Debian tree of `cargo xtask rootfs`: the cached minbase tarball, a fresh copy of it
//! for each extension, the host's registry settings copied in, and commands run inside.
//!
//! Every command runs in its own mount and PID namespace (`unshare --mount --pid`), where
//! /proc, /sys and a bind of /dev are mounted on the tree before `chroot`. Those mounts
//! exist only in that namespace: they vanish when its last process exits, whatever way
//! the harness ends (even SIGKILL), and the host never sees them. [`Tree`]'s drop still
//! checks /proc/self/mountinfo before it deletes a tree, and refuses if anything is
//! mounted under it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Debian release and debootstrap variant of the tree; they name the cache file.
pub const SUITE: &str = "bookworm";
pub const VARIANT: &str = "minbase";

/// Where the tarball is kept between runs (`EM_ROOTFS_CACHE` overrides it).
const CACHE_DIR: &str = "/var/cache/em-rootfs";
/// Where fresh copies are unpacked, one directory per run.
const RUNS_DIR: &str = "/var/tmp/em-rootfs";
/// The PATH inside the tree; `env -i` drops everything else of the host's environment.
const CHROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Host variables passed into the tree: the proxy, when the host reaches it by variables.
const PASSED_VARS: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// Mounts /sys and /dev on the tree `$1` inside the namespace (proc is unshare's
/// `--mount-proc`), then runs `$2` with `sh -c` in the chroot, with a clean environment.
const ENTER: &str = r#"r=$1; shift
mount --rbind /dev "$r/dev"
mount -t sysfs -o ro sysfs "$r/sys"
exec chroot "$r" /usr/bin/env -i "$@""#;

/// The tools the harness runs on the host, each with the package that has it.
const HOST_TOOLS: [(&str, &str); 5] = [
    ("debootstrap", "debootstrap"),
    ("unshare", "util-linux"),
    ("chroot", "coreutils"),
    ("tar", "tar"),
    ("mount", "mount"),
];

/// Fails with a hint when we are not root or a host tool is missing.
pub fn check_host() -> Result<(), String> {
    let uid = output_text(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        return Err(
            "`cargo xtask rootfs` needs root (debootstrap, mount, chroot)\n\
             hint: run it as root, as CI does"
                .into(),
        );
    }
    for (tool, package) in HOST_TOOLS {
        if !is_on_path(tool) {
            return Err(format!(
                "`{tool}` is not installed\nhint: apt-get install -y {package}"
            ));
        }
    }
    Ok(())
}

fn is_on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| Path::new(dir).join(tool).is_file())
    })
}

/// The host's view of the Debian registry and its TLS/proxy settings.
pub struct HostConfig {
    /// `deb URI SUITE COMPONENTS` lines of the host's sources for [`SUITE`] and its
    /// -updates/-security suites, in the order apt reads them.
    source_lines: Vec<String>,
    /// The first URI among them: debootstrap's mirror.
    pub mirror: String,
    /// Files of /etc/apt/apt.conf.d that set how the host reaches the mirror.
    apt_conf: Vec<PathBuf>,
}

impl HostConfig {
    /// Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}.
    pub fn read() -> Result<Self, String> {
        let source_lines = host_source_lines(Path::new("/etc/apt"));
        let mirror = source_lines
            .first()
            .and_then(|line| line.split_whitespace().nth(1))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "no apt source for `{SUITE}` in /etc/apt/sources.list(.d)\n\
                     hint: the harness uses the host's Debian mirror; configure apt first"
                )
            })?;
        Ok(Self {
            source_lines,
            mirror,
            apt_conf: apt_conf_files(Path::new("/etc/apt/apt.conf.d")),
        })
    }

    /// Copies the sources, the apt settings, the CA certificates and the npm/pip CA
    /// settings into `tree`, and a `policy-rc.d` that keeps services from starting.
    pub fn apply(&self, tree: &Path) -> Result<(), String> {
        let mut sources = self.source_lines.join("\n");
        sources.push('\n');
        write(&tree.join("etc/apt/sources.list"), &sources)?;
        for file in &self.apt_conf {
            copy_into(tree, file)?;
        }
        let policy = tree.join("usr/sbin/policy-rc.d");
        write(
            &policy,
            "#!/bin/sh\n# cargo xtask rootfs: no services in the chroot\nexit 101\n",
        )?;
        set_mode(&policy, 0o755)?;
        for path in [
            "/etc/ssl/certs",
            "/usr/local/share/ca-certificates",
            "/etc/npmrc",
            "/etc/pip.conf",
            "/etc/resolv.conf",
        ] {
            if Path::new(path).exists() {
                copy_into(tree, Path::new(path))?;
            }
        }
        Ok(())
    }
}

/// The host's `deb` sources of [`SUITE`] (also `SUITE-updates`, `SUITE-security`), as
/// one-line entries without options: the tree's debian-archive-keyring verifies them.
fn host_source_lines(apt: &Path) -> Vec<String> {
    let mut files = vec![apt.join("sources.list")];
    if let Ok(entries) = fs::read_dir(apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut lines = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let entries = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => deb822_entries(&text),
            Some("list") => one_line_entries(&text),
            _ => continue,
        };
        for (uri, suite, components) in entries {
            if suite == SUITE || suite.starts_with(&format!("{SUITE}-")) {
                lines.push(format!("deb {uri} {suite} {components}"));
            }
        }
    }
    lines.dedup();
    lines
}

/// (URI, suite, components) of each `deb` line of a one-line-style list.
fn one_line_entries(text: &str) -> Vec<(String, String, String)> {
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        // Options in brackets come first: `deb [signed-by=...] URI suite comps`.
        let rest = match rest.trim_start().strip_prefix('[') {
            Some(options) => options.split_once(']').map_or("", |(_, r)| r),
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            let components: Vec<&str> = words.collect();
            entries.push((uri.into(), suite.into(), components.join(" ")));
        }
    }
    entries
}

/// (URI, suite, components) of each enabled `deb` stanza of a deb822 `.sources` file.
fn deb822_entries(text: &str) -> Vec<(String, String, String)> {
    let mut entries = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> String {
            stanza
                .lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let is_deb = field("Types").split_whitespace().any(|t| t == "deb");
        if !is_deb || field("Enabled") == "no" {
            continue;
        }
        let components = field("Components");
        for uri in field("URIs").split_whitespace() {
            for suite in field("Suites").split_whitespace() {
                entries.push((uri.into(), suite.into(), components.clone()));
            }
        }
    }
    entries
}

/// The apt.conf.d files that say how to reach the mirror: a proxy, or the date checks
/// that a snapshot mirror needs turned off. Others (hooks of host tools) stay out.
fn apt_conf_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|path| {
            fs::read_to_string(path).is_ok_and(|text| {
                ["Proxy", "Check-Valid-Until", "Check-Date"]
                    .iter()
                    .any(|key| text.contains(key))
            })
        })
        .collect();
    files.sort();
    files
}

/// The cached tarball of the minbase tree: `<cache>/<suite>-<variant>.tar`.
pub fn cache_file() -> PathBuf {
    let dir = std::env::var_os("EM_ROOTFS_CACHE")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(CACHE_DIR), PathBuf::from);
    dir.join(format!("{SUITE}-{VARIANT}.tar"))
}

/// Builds the tarball unless it exists (or `rebuild`); returns how long the build took,
/// `None` when the cached one was used.
pub fn ensure_cache(host: &HostConfig, rebuild: bool) -> Result<Option<Duration>, String> {
    let tarball = cache_file();
    if tarball.is_file() && !rebuild {
        return Ok(None);
    }
    let started = Instant::now();
    let dir = tarball.with_extension("build");
    let tree = Tree::new(dir.clone(), false)?;
    eprintln!(
        "==> rootfs: building {} with debootstrap from {}",
        tarball.display(),
        host.mirror
    );
    run_logged(
        Command::new("debootstrap")
            .arg(format!("--variant={VARIANT}"))
            .arg(SUITE)
            .arg(&dir)
            .arg(&host.mirror),
        "debootstrap",
    )?;
    host.apply(&dir)?;
    // The updates and security suites too, so that an install does not upgrade the base.
    let upgrade = tree.run("apt-get update -q && apt-get -y -q upgrade && apt-get clean")?;
    if !upgrade.status.success() {
        return Err(format!(
            "apt-get upgrade in the new tree failed:\n{}",
            tail(&upgrade.stderr, 20)
        ));
    }
    let partial = tarball.with_extension("tar.partial");
    run_logged(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
        "tar",
    )?;
    fs::rename(&partial, &tarball)
        .map_err(|e| format!("cannot move {} into place: {e}", partial.display()))?;
    drop(tree);
    Ok(Some(started.elapsed()))
}

/// A fresh copy of the cached tree, deleted on drop unless kept.
pub struct Tree {
    pub path: PathBuf,
    keep: bool,
}

impl Tree {
    /// An empty directory at `path` (a stale one from an earlier run is cleared first).
    fn new(path: PathBuf, keep: bool) -> Result<Self, String> {
        remove_tree(&path)?;
        fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self { path, keep })
    }

    /// Unpacks the cached tarball into `<runs>/<pid>/<name>` and applies the host config.
    pub fn unpack(name: &str, host: &HostConfig, keep: bool) -> Result<Self, String> {
        let path = Path::new(RUNS_DIR)
            .join(std::process::id().to_string())
            .join(name);
        let tree = Self::new(path, keep)?;
        run_logged(
            Command::new("tar")
                .arg("--numeric-owner")
                .arg("-C")
                .arg(&tree.path)
                .arg("-xpf")
                .arg(cache_file()),
            "tar",
        )?;
        host.apply(&tree.path)?;
        Ok(tree)
    }

    /// Copies `binary` to /em-rootfs/extension-manager in the tree (outside every listed
    /// path), and returns that path as the chroot sees it.
    pub fn install_binary(&self, binary: &Path) -> Result<&'static str, String> {
        const INSIDE: &str = "/em-rootfs/extension-manager";
        let target = self.path.join(INSIDE.trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::copy(binary, &target)
            .map_err(|e| format!("cannot copy {} into the tree: {e}", binary.display()))?;
        Ok(INSIDE)
    }

    /// Runs `script` with `sh -c` in the chroot, in a namespace of its own.
    pub fn run(&self, script: &str) -> Result<Output, String> {
        self.command(script, &[])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start unshare: {e}"))
    }

    /// [`Tree::run`] in a network namespace of its own as well (`unshare --net`): no
    /// interface but a loopback that is down, so nothing can be fetched from anywhere.
    pub fn run_offline(&self, script: &str) -> Result<Output, String> {
        self.command(script, &["--net"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start unshare: {e}"))
    }

    /// Where `inside` (an absolute path in the chroot) is on the host.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.path.join(inside.trim_start_matches('/'))
    }

    fn command(&self, script: &str, namespaces: &[&str]) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(namespaces)
            .args(["--mount", "--propagation", "private", "--pid", "--fork"])
            .arg(format!("--mount-proc={}", self.path.join("proc").display()))
            .args(["--", "sh", "-ec", ENTER, "sh"])
            .arg(&self.path)
            .arg(format!("PATH={CHROOT_PATH}"))
            .args([
                "HOME=/root",
                "LC_ALL=C.UTF-8",
                "DEBIAN_FRONTEND=noninteractive",
            ]);
        for var in PASSED_VARS {
            if let Ok(value) = std::env::var(var) {
                command.arg(format!("{var}={value}"));
            }
        }
        command.args(["/bin/sh", "-c", script]);
        command
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("==> rootfs: kept {}", self.path.display());
            return;
        }
        if let Err(message) = remove_tree(&self.path) {
            eprintln!("warning: {message}");
        }
    }
}

/// Deletes `path`, but never while something is mounted under it (deleting through a
/// bind of /dev would delete the host's devices).
fn remove_tree(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Ok(());
    }
    let mounts = mounts_under(path);
    if !mounts.is_empty() {
        return Err(format!(
            "not deleting {}: still mounted under it: {}\nhint: umount -R {}",
            path.display(),
            mounts.join(", "),
            mounts[0]
        ));
    }
    fs::remove_dir_all(path).map_err(|e| format!("cannot delete {}: {e}", path.display()))
}

/// Mount points at or under `path` in our own mount namespace.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.to_string_lossy().trim_end_matches('/').to_owned();
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == prefix || point.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect()
}

/// The directory of this run's trees (for the final check that nothing is mounted).
pub fn runs_dir() -> PathBuf {
    Path::new(RUNS_DIR).join(std::process::id().to_string())
}

/// Deletes the trees of earlier runs whose process is gone (killed before its cleanup, or
/// kept with `--keep`), never one with anything mounted under it.
pub fn sweep_stale_runs() {
    let Ok(entries) = fs::read_dir(RUNS_DIR) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let is_alive = Path::new("/proc").join(&pid).exists();
        if pid.parse::<u32>().is_ok()
            && !is_alive
            && let Err(message) = remove_tree(&entry.path())
        {
            eprintln!("warning: {message}");
        }
    }
}

/// Deletes this run's (empty) directory of trees.
pub fn remove_runs_dir() {
    let _ = fs::remove_dir(runs_dir());
}

/// The last `lines` lines of a tool's output.
pub fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a host command with its output captured; on failure the error carries the tail.
fn run_logged(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}\n{}",
        output.status,
        tail(&output.stdout, 10),
        tail(&output.stderr, 20)
    ))
}

fn output_text(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Copies a host file or directory to the same path in the tree (`cp -a`, symlinks kept).
fn copy_into(tree: &Path, host_path: &Path) -> Result<(), String> {
    let relative = host_path.strip_prefix("/").unwrap_or(host_path);
    let target = tree.join(relative);
    let parent = target.parent().unwrap_or(tree);
    fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    if host_path.is_dir() {
        fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        let mut source = host_path.as_os_str().to_owned();
        source.push("/.");
        run_logged(
            Command::new("cp").arg("-a").arg(source).arg(&target),
            "cp -a",
        )
    } else {
        // /etc/resolv.conf may be a symlink on the host: copy what it points to.
        let _ = fs::remove_file(&target);
        fs::copy(host_path, &target)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {}: {e}", host_path.display()))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deb822_stanzas_and_skips_disabled_ones() {
        let text = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nEnabled: no\nURIs: http://other.example\nSuites: bookworm\nComponents: main\n";
        let entries = deb822_entries(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].1, "bookworm-updates");
        assert_eq!(entries[0].0, "http://mirror.example/debian");
    }

    #[test]
    fn reads_one_line_entries_with_options() {
        let text = "# x\ndeb [signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\ndeb-src http://x bookworm main\n";
        assert_eq!(
            one_line_entries(text),
            vec![(
                "http://mirror.example/debian".into(),
                "bookworm".into(),
                "main contrib".into()
            )]
        );
    }

    #[test]
    fn no_mount_is_under_a_fresh_temp_dir() {
        assert!(mounts_under(&std::env::temp_dir().join("em-rootfs-none")).is_empty());
        assert!(!mounts_under(Path::new("/")).is_empty());
    }
}
