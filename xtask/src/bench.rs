//! `cargo xtask bench`: the benchmarks of BENCHMARKS.md. This module is the command line
//! and the retry-overhead benchmark; the install benchmark (`--only install`) is
//! [`crate::bench_install`].
//!
//! Retry overhead: what `extension-manager retry -- CMD` costs over running `CMD`. Both
//! commands run N times, interleaved (direct, retry, direct, retry ...) so that they
//! share whatever else the machine is doing; the result is the ratio of the medians, from
//! one run on one machine. Absolute times differ between machines and between runs, which
//! is why no test asserts on them (TESTING.md section 4).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench_install::json_string;
use crate::{command, target_dir};

const DEFAULT_RUNS: usize = 200;
/// Untimed runs of each command first, so that page cache and dynamic loader state are
/// warm for both and the first timed runs are not outliers.
const WARMUP_RUNS: usize = 10;
const START_MARKER: &str = "<!-- bench:retry-overhead:start -->";
const END_MARKER: &str = "<!-- bench:retry-overhead:end -->";
const REPRODUCE: &str = "cargo xtask bench --only retry --write";
/// Rounds of the install benchmark, without and with faults, unless told otherwise.
const DEFAULT_ROUNDS: usize = 5;
const DEFAULT_FAULT_ROUNDS: usize = 5;

/// Which benchmarks run: all of them unless `--only` says one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// The retry overhead.
    Retry,
    /// The install benchmark, download case included.
    Install,
    /// Only the download case of the install benchmark (no root needed; no `--write`).
    Download,
}

/// What `cargo xtask bench` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    runs: usize,
    write: bool,
    binary: Option<PathBuf>,
    only: Option<Only>,
    rounds: usize,
    fault_rounds: usize,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Options {
            runs: DEFAULT_RUNS,
            write: false,
            binary: None,
            only: None,
            rounds: DEFAULT_ROUNDS,
            fault_rounds: DEFAULT_FAULT_ROUNDS,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("`{name}` needs a value"))
            };
            match flag {
                "--runs" => {
                    let text = value("--runs")?;
                    options.runs = match text.parse::<usize>() {
                        Ok(runs) if runs > 0 => runs,
                        _ => return Err(format!("`--runs` takes a positive number, not `{text}`")),
                    };
                }
                "--rounds" => options.rounds = positive("--rounds", &value("--rounds")?, 1)?,
                "--fault-rounds" => {
                    options.fault_rounds =
                        positive("--fault-rounds", &value("--fault-rounds")?, 0)?;
                }
                "--only" => {
                    options.only = Some(match value("--only")?.as_str() {
                        "retry" => Only::Retry,
                        "install" => Only::Install,
                        "download" => Only::Download,
                        other => {
                            return Err(format!(
                                "`--only` takes retry, install or download, not `{other}`"
                            ));
                        }
                    });
                }
                "--binary" => options.binary = Some(PathBuf::from(value("--binary")?)),
                "--write" if inline.is_none() => options.write = true,
                _ => {
                    return Err(format!(
                        "unexpected argument `{arg}` to `cargo xtask bench`"
                    ));
                }
            }
        }
        if options.write && options.only == Some(Only::Download) {
            return Err(
                "`--write` needs the whole install benchmark: use `--only install`".to_owned(),
            );
        }
        Ok(options)
    }

    fn runs_retry(&self) -> bool {
        matches!(self.only, None | Some(Only::Retry))
    }

    fn runs_install(&self) -> bool {
        matches!(self.only, None | Some(Only::Install | Only::Download))
    }
}

/// A count given on the command line: a whole number of at least `min`.
fn positive(flag: &str, text: &str, min: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "`{flag}` takes a whole number of at least {min}, not `{text}`"
        )),
    }
}

/// Timings of one command, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    median_us: f64,
    p90_us: f64,
}

impl Summary {
    fn of(samples: &[Duration]) -> Self {
        let mut micros: Vec<f64> = samples
            .iter()
            .map(|sample| sample.as_secs_f64() * 1e6)
            .collect();
        micros.sort_by(f64::total_cmp);
        Summary {
            median_us: median(&micros),
            p90_us: nearest_rank(&micros, 0.9),
        }
    }
}

/// The middle value of sorted samples (the mean of the two middle ones for an even count).
pub(crate) fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The nearest-rank percentile of sorted samples: the smallest value that at least
/// `fraction` of the samples are less than or equal to.
fn nearest_rank(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The outcome of one bench run: everything the JSON file, the table and BENCHMARKS.md say.
struct Measurement {
    date: String,
    /// The binary measured, relative to the workspace root when inside it.
    binary: String,
    runs: usize,
    nproc: usize,
    uname: String,
    direct_command: String,
    retry_command: String,
    direct: Summary,
    retry: Summary,
}

impl Measurement {
    fn ratio(&self) -> f64 {
        self.retry.median_us / self.direct.median_us
    }

    fn to_json(&self) -> String {
        let command = |name: &str, command: &str, summary: Summary| {
            format!(
                "    {}: {{ \"command\": {}, \"median_us\": {:.1}, \"p90_us\": {:.1} }}",
                json_string(name),
                json_string(command),
                summary.median_us,
                summary.p90_us
            )
        };
        format!(
            "{{\n  \"benchmark\": \"retry-overhead\",\n  \"date\": {},\n  \"runs\": {},\n  \
             \"warmup_runs\": {WARMUP_RUNS},\n  \"machine\": {{ \"nproc\": {}, \"uname\": {} }},\n  \
             \"commands\": {{\n{},\n{}\n  }},\n  \"ratio\": {:.3},\n  \
             \"ratio_is\": \"median(retry) / median(direct)\",\n  \"reproduce\": {}\n}}\n",
            json_string(&self.date),
            self.runs,
            self.nproc,
            json_string(&self.uname),
            command("direct", &self.direct_command, self.direct),
            command(
                "retry",
                &format!("{} retry -- true", self.binary),
                self.retry
            ),
            self.ratio(),
            json_string(REPRODUCE),
        )
    }

    fn to_markdown_table(&self) -> String {
        let mut table = String::new();
        table.push_str("| command | median | p90 |\n|---|---:|---:|\n");
        for (command, summary) in [
            (&self.direct_command, self.direct),
            (&self.retry_command, self.retry),
        ] {
            let _ = writeln!(
                table,
                "| `{command}` | {:.0} µs | {:.0} µs |",
                summary.median_us, summary.p90_us
            );
        }
        let _ = write!(
            table,
            "\nRatio of medians (retry / direct): **{:.2}×**",
            self.ratio()
        );
        table
    }

    /// The text between the BENCHMARKS.md markers.
    fn to_benchmarks_section(&self) -> String {
        format!(
            "Measured {} on `{}` ({} CPUs), {} interleaved runs of each command after {WARMUP_RUNS} \
             warm-up runs.\n\n{}\n\nReproduce with `{REPRODUCE}` (raw numbers: \
             `target/bench/retry-overhead.json`).",
            self.date,
            self.uname,
            self.nproc,
            self.runs,
            self.to_markdown_table()
        )
    }
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    // Before any section of BENCHMARKS.md is rewritten, which would make it `-dirty`.
    let commit = git_commit(root);
    let binary = match &options.binary {
        Some(binary) => fs::canonicalize(binary)
            .map_err(|error| format!("--binary {}: {error}", binary.display()))?,
        None => {
            cargo_build(
                root,
                &["cargo", "build", "--release", "-p", "extension-manager"],
            )?;
            target_dir(root).join("release/extension-manager")
        }
    };
    if !binary.is_file() {
        return Err(format!("no binary at {}", binary.display()));
    }
    if options.runs_retry() {
        run_retry(root, options, &binary)?;
    }
    if options.runs_install() {
        crate::bench_install::run(
            root,
            &crate::bench_install::Request {
                binary: &binary,
                rounds: options.rounds,
                fault_rounds: options.fault_rounds,
                download_only: options.only == Some(Only::Download),
                write: options.write,
                commit: &commit,
            },
        )?;
    }
    Ok(())
}

/// `git describe --always --dirty` of the checkout, or `unknown`.
pub(crate) fn git_commit(root: &Path) -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The path as the workspace sees it: relative to `root` when inside it.
pub(crate) fn shown_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn run_retry(root: &Path, options: &Options, binary: &Path) -> Result<(), String> {
    let shown_binary = shown_path(root, binary);

    let mut direct = Command::new("true");
    let mut retry = Command::new(binary);
    retry.args(["retry", "--", "true"]);
    let direct_command = "true".to_owned();
    let retry_command = format!("{shown_binary} retry -- true");
    check_runs(&mut retry, &retry_command)?;
    check_runs(&mut direct, &direct_command)?;
    for command in [&mut direct, &mut retry] {
        command
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }

    eprintln!(
        "==> bench: {} interleaved runs each of `{direct_command}` and `{retry_command}` \
         (after {WARMUP_RUNS} warm-up runs)",
        options.runs
    );
    for _ in 0..WARMUP_RUNS {
        time(&mut direct, &direct_command)?;
        time(&mut retry, &retry_command)?;
    }
    let mut direct_samples = Vec::with_capacity(options.runs);
    let mut retry_samples = Vec::with_capacity(options.runs);
    for _ in 0..options.runs {
        direct_samples.push(time(&mut direct, &direct_command)?);
        retry_samples.push(time(&mut retry, &retry_command)?);
    }

    let result = Measurement {
        date: utc_timestamp(SystemTime::now()),
        binary: shown_binary,
        runs: options.runs,
        nproc: std::thread::available_parallelism().map_or(1, usize::from),
        uname: uname(),
        direct_command,
        retry_command: "extension-manager retry -- true".to_owned(),
        direct: Summary::of(&direct_samples),
        retry: Summary::of(&retry_samples),
    };

    let json_path = target_dir(root).join("bench/retry-overhead.json");
    write_file(&json_path, &result.to_json())?;
    eprintln!(
        "==> bench: wrote {}",
        json_path.strip_prefix(root).unwrap_or(&json_path).display()
    );
    println!("{}", result.to_markdown_table());

    if options.write {
        let path = root.join("BENCHMARKS.md");
        let text = fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let updated = replace_section_between(
            &text,
            START_MARKER,
            END_MARKER,
            &result.to_benchmarks_section(),
        )
        .map_err(|error| format!("BENCHMARKS.md: {error}"))?;
        write_file(&path, &updated)?;
        eprintln!("==> bench: updated the retry-overhead section of BENCHMARKS.md");
    }
    Ok(())
}

/// Runs a command once with its output captured, so that a binary that cannot run the
/// bench (e.g. one without the `retry` subcommand yet) fails with its own words.
fn check_runs(command: &mut Command, shown: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not start `{shown}`: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!(
        "`{shown}` failed ({}), so there is nothing to measure{}",
        output.status,
        if stderr.trim().is_empty() {
            String::new()
        } else {
            format!("; its stderr:\n{}", stderr.trim_end())
        }
    ))
}

fn time(command: &mut Command, shown: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|error| format!("could not start `{shown}`: {error}"))?;
    let elapsed = started.elapsed();
    if status.success() {
        Ok(elapsed)
    } else {
        Err(format!("`{shown}` failed during the bench ({status})"))
    }
}

/// `uname -srm`, e.g. `Linux 6.1.0-18-amd64 x86_64`.
pub(crate) fn uname() -> String {
    Command::new("uname")
        .arg("-srm")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// Replaces what lies between the markers `start_marker` and `end_marker`, keeping them.
pub(crate) fn replace_section_between(
    text: &str,
    start_marker: &str,
    end_marker: &str,
    section: &str,
) -> Result<String, String> {
    let missing = |marker: &str| {
        format!("no `{marker}` marker; add the start and end markers where the results go")
    };
    let start = text
        .find(start_marker)
        .ok_or_else(|| missing(start_marker))?
        + start_marker.len();
    let end = start
        + text[start..]
            .find(end_marker)
            .ok_or_else(|| missing(end_marker))?;
    Ok(format!("{}\n{section}\n{}", &text[..start], &text[end..]))
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// RFC 3339 in UTC to the second, e.g. `2024-05-01T12:00:00Z`, without a date crate.
pub(crate) fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, seconds_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Year, month and day of a count of days since 1970-01-01 (proleptic Gregorian), after
/// Howard Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Runs a `cargo build` command line (announced on stderr) in `root`.
pub fn cargo_build(root: &Path, argv: &[&str]) -> Result<(), String> {
    eprintln!("==> {}", argv.join(" "));
    let status = command(root, argv)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("could not start cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", argv.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_default_to_200_runs_and_no_write() {
        assert_eq!(
            Options::parse(&[]),
            Ok(Options {
                runs: 200,
                write: false,
                binary: None,
                only: None,
                rounds: 5,
                fault_rounds: 5,
            })
        );
        assert_eq!(
            Options::parse(&args("--runs 50 --write --binary /bin/x")),
            Ok(Options {
                runs: 50,
                write: true,
                binary: Some(PathBuf::from("/bin/x")),
                only: None,
                rounds: 5,
                fault_rounds: 5,
            })
        );
        assert_eq!(
            Options::parse(&args("--runs=7")).map(|options| options.runs),
            Ok(7)
        );
        assert!(Options::parse(&args("--runs 0")).is_err());
        assert!(Options::parse(&args("--runs")).is_err());
        assert!(Options::parse(&args("--write=yes")).is_err());
        assert!(Options::parse(&args("--fast")).is_err());
    }

    #[test]
    fn only_rounds_and_fault_rounds() {
        let parsed = Options::parse(&args("--only install --rounds 3 --fault-rounds=0 --write"))
            .expect("valid");
        assert_eq!(
            (
                parsed.only,
                parsed.rounds,
                parsed.fault_rounds,
                parsed.write
            ),
            (Some(Only::Install), 3, 0, true)
        );
        assert!(parsed.runs_install() && !parsed.runs_retry());
        let retry = Options::parse(&args("--only=retry")).expect("valid");
        assert!(retry.runs_retry() && !retry.runs_install());
        let all = Options::parse(&[]).expect("valid");
        assert!(all.runs_retry() && all.runs_install());
        assert!(Options::parse(&args("--only download")).is_ok());
        assert!(Options::parse(&args("--only download --write")).is_err());
        assert!(Options::parse(&args("--only everything")).is_err());
        assert!(Options::parse(&args("--rounds 0")).is_err());
        assert!(Options::parse(&args("--fault-rounds -1")).is_err());
    }

    #[test]
    fn median_and_p90_follow_their_definitions() {
        assert_eq!(median(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&hundred, 0.9), 90.0);
        assert_eq!(nearest_rank(&[5.0], 0.9), 5.0);
        let samples: Vec<Duration> = [3, 1, 2].into_iter().map(Duration::from_micros).collect();
        let summary = Summary::of(&samples);
        assert!((summary.median_us - 2.0).abs() < 1e-9 && (summary.p90_us - 3.0).abs() < 1e-9);
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2024-02-29 (a leap day) 13:45:30 UTC.
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(1_709_214_330)),
            "2024-02-29T13:45:30Z"
        );
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn only_the_text_between_the_markers_is_replaced() {
        let text =
            format!("# Benchmarks\n\nintro\n\n{START_MARKER}\nold\ntable\n{END_MARKER}\n\nafter\n");
        assert_eq!(
            replace_section_between(&text, START_MARKER, END_MARKER, "new"),
            Ok(format!(
                "# Benchmarks\n\nintro\n\n{START_MARKER}\nnew\n{END_MARKER}\n\nafter\n"
            ))
        );
        let replace = |text: &str| replace_section_between(text, START_MARKER, END_MARKER, "new");
        assert!(replace("no markers").is_err());
        assert!(replace(&format!("{END_MARKER}\n{START_MARKER}\n")).is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            json_string("a \"b\" \\ c\n\u{1}"),
            r#""a \"b\" \\ c\n\u0001""#
        );
    }
}
