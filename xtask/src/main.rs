//! Project automation for the extension-manager workspace, written in Rust rather than
//! as a pile of shell scripts (the rust-analyzer habit):
//!
//! - `cargo xtask ci`: tidy, formatting, clippy with warnings denied, the tests and the
//!   doctests, in that order, stopping at the first failure. `.ci/run` calls it.
//! - `cargo xtask e2e`: the real tools against the flaky local registry, required to run;
//!   prints its wall time and regenerates the fault x tool table of TESTING.md.
//! - `cargo xtask tidy`: checks the repository itself (crate docs, no unfinished-work or
//!   debug macros, the required documents).
//! - `cargo xtask bench`: the overhead of `extension-manager retry -- true` over `true`,
//!   and the install benchmark (extension-manager against the old bash flow and apt-get
//!   alone, with and without faults; a cut download), measured in one run on this machine
//!   and reported as ratios (BENCHMARKS.md).
//! - `cargo xtask rootfs`: each bundled extension installed and removed in a fresh Debian
//!   minbase chroot, the machine compared before and after (TESTING.md, "Fresh rootfs").
//!
//! It depends on no crate of the workspace, so a failing crate must never stop it from
//! reporting why; its dependencies are serde_json, for the benchmark's JSON, and toml, to
//! read the bundled manifests.

mod bench;
mod bench_install;
mod ci;
mod outcomes;
mod rootfs;
mod rootfs_chroot;
mod rootfs_snapshot;
mod sim;
mod tidy;

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  ci                 tidy, cargo fmt --check, cargo clippy -D warnings, the tests
                     (cargo nextest, or cargo test without it), the e2e suite and
                     the doctests
  e2e                the real tools against the flaky local registry, required
                     (EM_E2E_REQUIRED=1: a missing tool or root fails, not skips);
                     prints its wall time and rewrites the fault x tool table of
                     TESTING.md from the run's outcome rows
  tidy               check the repository itself: crate docs, no unfinished-work or
                     debug macros, README.md / ARCHITECTURE.md / docs/decisions.md present
  bench [options]    the benchmarks of BENCHMARKS.md, all unless --only names one:
                     retry (overhead of `extension-manager retry -- true` over `true`),
                     install (extension-manager / the old bash flow / apt-get alone
                     installing 5 apt packages from 127.0.0.1, without and with 20%
                     faults, and a 50 MiB download cut at 25/50/75%; needs root),
                     download (only the download case of install)
      --only NAME    retry, install or download
      --runs N       retry: runs of each command, interleaved (default 200)
      --rounds N     install: rounds without faults, and download rounds (default 5)
      --fault-rounds N
                     install: rounds with faults (default 5; 0 skips them)
      --write        also rewrite the sections of BENCHMARKS.md that ran
      --binary PATH  measure this binary instead of building
                     target/release/extension-manager (for trying the bench itself)
  rootfs [options] [EXT...]
                     install and remove each bundled extension (default: all that
                     need no host outside apt's, npm's and pip's registries) in a
                     fresh Debian 12 minbase chroot, built once with debootstrap
                     from the host's apt mirror and cached in
                     /var/cache/em-rootfs (EM_ROOTFS_CACHE); fails when dpkg's
                     selections, npm/pip packages or files differ afterwards;
                     needs root. Reports under target/rootfs/<EXT>/
      --report-only  print the differences but exit 0
      --keep         keep each tree under /var/tmp/em-rootfs (until the next run)
      --rebuild      build the cached tree again
      --binary PATH  test this binary instead of building the release one
      --set EXT.OPTION=VALUE
                     pass an option to each install (not with --offline)
      --offline      lock and bundle each extension on the host, then install,
                     check and remove it in the chroot inside `unshare --net`
                     (`install --offline --from`: no network at all), through
                     examples/image/*.sh, the scripts of examples/Dockerfile
      --feature      with --offline: install through the dev container Feature's
                     install.sh (examples/devcontainer-feature) instead
  sim [--clients N] [--seed N]
                     Brooker's backoff-and-jitter simulation (OCC contention, default
                     100 clients) with em-retry's own delays and jitter, then the
                     retry budget's amplification under a full outage; virtual time
  help               this message
";

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();

    let result = match command.as_deref() {
        Some("ci") if rest.is_empty() => ci::run(&root),
        Some("tidy") if rest.is_empty() => tidy::run(&root),
        Some("e2e") if rest.is_empty() => ci::run_e2e(&root),
        Some("bench") => {
            bench::Options::parse(&rest).and_then(|options| bench::run(&root, &options))
        }
        Some("rootfs") => {
            rootfs::Options::parse(&rest).and_then(|options| rootfs::run(&root, &options))
        }
        Some("sim") => sim::run(&rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("ci" | "tidy" | "e2e") => Err(format!("unexpected arguments: {}", rest.join(" "))),
        Some(other) => Err(format!("unknown command `{other}`")),
        None => Err("no command given".to_owned()),
    };

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            if command.is_none()
                || message.starts_with("unknown")
                || message.starts_with("unexpected")
            {
                eprint!("\n{USAGE}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this package's directory, whatever the current
/// directory was when `cargo xtask` ran.
fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the process too; prefer it to the
    // compile-time value, which is stale when two checkouts share one target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in a subdirectory of the workspace")
        .to_path_buf()
}

/// The directory cargo builds into: `CARGO_TARGET_DIR` when set, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A command line as a user would type it, e.g. `cargo fmt --all -- --check`.
///
/// The first word is `cargo` for cargo itself; [`command`] runs the cargo that runs us
/// (`$CARGO`), so that a toolchain override applies to every step.
fn command(root: &Path, argv: &[&str]) -> Command {
    let (program, args) = argv.split_first().expect("a command line has a program");
    let program: OsString = if *program == "cargo" {
        env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
    } else {
        (*program).into()
    };
    let mut command = Command::new(program);
    command.args(args).current_dir(root);
    command
}

/// Seconds with two decimals: `12.34s`.
fn format_duration(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}
