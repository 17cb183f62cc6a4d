//! `cargo xtask ci`: the checks a change must pass, in the order that fails fastest.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{command, format_duration, outcomes, rootfs, target_dir, tidy};

/// One check of the pipeline.
struct Step {
    name: &'static str,
    action: Action,
}

enum Action {
    /// `cargo xtask tidy`, run in this process.
    Tidy,
    /// A command line, first word `cargo` (see [`crate::command`]).
    Run(Vec<&'static str>),
    /// The e2e suite's command line: run with the outcome rows collected, then the table
    /// of TESTING.md rewritten from them (see [`outcomes`]).
    E2e(Vec<&'static str>),
    /// `cargo xtask rootfs` on [`rootfs::CI_EXTENSIONS`], run in this process.
    Rootfs,
}

impl Step {
    fn describe(&self) -> String {
        match &self.action {
            Action::Tidy => "cargo xtask tidy".to_owned(),
            Action::Rootfs => format!("cargo xtask rootfs {}", rootfs::CI_EXTENSIONS.join(" ")),
            Action::Run(argv) | Action::E2e(argv) => argv.join(" "),
        }
    }
}

enum Outcome {
    Passed(Duration),
    Failed(Duration, String),
}

/// `cargo xtask e2e`: only the end-to-end suite, required to run (no skipping).
pub fn run_e2e(root: &Path) -> Result<(), String> {
    let step = steps(root)
        .into_iter()
        .find(|s| s.name == "e2e")
        .ok_or_else(|| "no e2e step".to_string())?;
    let Action::E2e(argv) = &step.action else {
        return Err("the e2e step is not the e2e suite".into());
    };
    eprintln!("==> e2e: {}", step.describe());
    e2e(root, argv, true)
}

/// Runs the e2e suite with its outcome rows collected, prints its wall time, and after a
/// passing run publishes the fault x tool table (only when nothing could skip: `required`,
/// or `EM_E2E_REQUIRED=1` already set, as .ci/run does).
fn e2e(root: &Path, argv: &[&str], required: bool) -> Result<(), String> {
    let started = Instant::now();
    let rows = outcomes::prepare(&target_dir(root))?;
    let mut cmd = command(root, argv);
    cmd.env(outcomes::DIR_VAR, &rows);
    let required = required || std::env::var("EM_E2E_REQUIRED").is_ok_and(|v| v == "1");
    if required {
        cmd.env("EM_E2E_REQUIRED", "1");
    }
    let result = run_command(cmd);
    let wall = started.elapsed();
    eprintln!("==> e2e: wall time {}", format_duration(wall));
    result?;
    outcomes::publish(&rows, &root.join("TESTING.md"), wall, required)
}

/// Runs every step, stops at the first failure, and prints the time each step took.
pub fn run(root: &Path) -> Result<(), String> {
    let steps = steps(root);
    let count = steps.len();
    let total = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(count);

    for (index, step) in steps.iter().enumerate() {
        eprintln!(
            "==> ci [{}/{count}] {}: {}",
            index + 1,
            step.name,
            step.describe()
        );
        let started = Instant::now();
        let result = match &step.action {
            Action::Tidy => tidy::run(root),
            Action::Run(argv) => run_command(command(root, argv)),
            Action::E2e(argv) => e2e(root, argv, false),
            Action::Rootfs => rootfs::run(root, &rootfs::Options::for_ci()),
        };
        let elapsed = started.elapsed();
        match result {
            Ok(()) => {
                eprintln!(
                    "==> ci [{}/{count}] {}: ok in {}",
                    index + 1,
                    step.name,
                    format_duration(elapsed)
                );
                outcomes.push(Outcome::Passed(elapsed));
            }
            Err(reason) => {
                eprintln!(
                    "==> ci [{}/{count}] {}: FAILED in {} ({reason})",
                    index + 1,
                    step.name,
                    format_duration(elapsed)
                );
                outcomes.push(Outcome::Failed(elapsed, reason));
                break;
            }
        }
    }

    print_summary(&steps, &outcomes, total.elapsed());
    match outcomes.last() {
        Some(Outcome::Failed(_, reason)) => {
            let step = &steps[outcomes.len() - 1];
            Err(format!(
                "ci failed at step `{}` ({reason}): {}",
                step.name,
                step.describe()
            ))
        }
        _ => Ok(()),
    }
}

fn steps(root: &Path) -> Vec<Step> {
    let (tests, e2e) = if has_nextest(root) {
        (
            vec![
                "cargo",
                "nextest",
                "run",
                "--workspace",
                "--exclude",
                "em-e2e",
            ],
            vec!["cargo", "nextest", "run", "-p", "em-e2e"],
        )
    } else {
        eprintln!(
            "note: cargo-nextest is not installed; the tests run with `cargo test --workspace`"
        );
        eprintln!("hint: `cargo install cargo-nextest --locked` (.ci/run installs it)");
        (
            vec!["cargo", "test", "--workspace", "--exclude", "em-e2e"],
            vec!["cargo", "test", "-p", "em-e2e"],
        )
    };
    let mut steps = vec![
        Step {
            name: "tidy",
            action: Action::Tidy,
        },
        Step {
            name: "fmt",
            action: Action::Run(vec!["cargo", "fmt", "--all", "--", "--check"]),
        },
        Step {
            name: "clippy",
            action: Action::Run(vec![
                "cargo",
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Step {
            name: "test",
            action: Action::Run(tests),
        },
        // The real tools against the flaky local registry (needs root for apt; skips
        // without it, unless EM_E2E_REQUIRED=1, which .ci/run sets).
        Step {
            name: "e2e",
            action: Action::E2e(e2e),
        },
        // nextest does not run doctests, and our public items carry examples that must.
        Step {
            name: "doctest",
            action: Action::Run(vec!["cargo", "test", "--workspace", "--doc"]),
        },
    ];
    // Install + remove in a fresh Debian chroot (root, debootstrap, a few minutes): only
    // with EM_ROOTFS=1, which .ci/run sets from one line of its own.
    if std::env::var("EM_ROOTFS").is_ok_and(|v| v == "1") {
        steps.push(Step {
            name: "rootfs",
            action: Action::Rootfs,
        });
    } else {
        eprintln!("note: the fresh-rootfs test is off (EM_ROOTFS=1 runs it as the last step)");
    }
    steps
}

fn has_nextest(root: &Path) -> bool {
    command(root, &["cargo", "nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs a step with the terminal's stdout and stderr, so that its own output explains a
/// failure; the error is only the exit status.
fn run_command(mut command: Command) -> Result<(), String> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("could not start {:?}: {error}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(status.to_string())
    }
}

fn print_summary(steps: &[Step], outcomes: &[Outcome], total: Duration) {
    let width = steps
        .iter()
        .map(|step| step.name.len())
        .max()
        .unwrap_or(0)
        .max("total".len());
    eprintln!("\nci summary:");
    for (index, step) in steps.iter().enumerate() {
        let (time, verdict) = match outcomes.get(index) {
            Some(Outcome::Passed(elapsed)) => (format_duration(*elapsed), "ok".to_owned()),
            Some(Outcome::Failed(elapsed, reason)) => {
                (format_duration(*elapsed), format!("FAILED ({reason})"))
            }
            None => ("-".to_owned(), "not run".to_owned()),
        };
        eprintln!("  {:<width$}  {time:>9}  {verdict}", step.name);
    }
    eprintln!("  {:<width$}  {:>9}", "total", format_duration(total));
}
