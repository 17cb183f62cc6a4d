//! `cargo xtask bench --only install`: extension-manager against the old bash flow and
//! against apt-get alone, installing five apt packages from a local repository, with and
//! without faults; and a 50 MiB download cut at 25/50/75%. BENCHMARKS.md ("Install")
//! explains the method.
//!
//! The measuring is done by `em-bench-install` (a binary of the em-e2e crate: it needs
//! the e2e harness, which xtask must not depend on), built here with `--release` and run
//! with the product binary; it prints its raw numbers as JSON. This module turns them
//! into medians, ratios, success rates and the BENCHMARKS.md section.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::bench::{median, replace_section_between, shown_path, uname, utc_timestamp, write_file};
use crate::target_dir;
use serde_json::Value;

const START_MARKER: &str = "<!-- bench:install:start -->";
const END_MARKER: &str = "<!-- bench:install:end -->";
pub const REPRODUCE: &str = "cargo xtask bench --only install --write";

/// The targets BENCHMARKS.md sets.
const TARGET_A_OVER_C: f64 = 1.15;
const TARGET_FAULTS_OVER_NO_FAULTS: f64 = 1.5;
const TARGET_CUT_OVER_UNCUT: f64 = 2.0;

const CONTESTANTS: [(&str, &str); 3] = [
    (
        "A",
        "`extension-manager install bench-apt-1 … bench-apt-5` (release build, default policy)",
    ),
    (
        "B",
        "`fixtures/bench/old-flow.sh` (per package: `apt-get update`, `apt-get install -y`, 3 attempts, sleeps)",
    ),
    (
        "C",
        "`apt-get update`, then one `apt-get install -y` of the five",
    ),
];

/// What `run` needs from the command line.
pub struct Request<'a> {
    pub binary: &'a Path,
    pub rounds: usize,
    pub fault_rounds: usize,
    /// Only the download case (no root needed, nothing written to BENCHMARKS.md).
    pub download_only: bool,
    pub write: bool,
    /// `git describe` of the checkout, taken before anything was written.
    pub commit: &'a str,
}

pub fn run(root: &Path, request: &Request<'_>) -> Result<(), String> {
    let argv = [
        "cargo",
        "build",
        "--release",
        "-p",
        "em-e2e",
        "--bin",
        "em-bench-install",
    ];
    crate::bench::cargo_build(root, &argv)?;
    let target = target_dir(root);
    let bench = target.join("release/em-bench-install");
    let logs = target.join("bench/install-logs");
    if logs.exists() {
        fs::remove_dir_all(&logs)
            .map_err(|error| format!("cannot clear {}: {error}", logs.display()))?;
    }
    let mut cmd = Command::new(&bench);
    cmd.current_dir(root)
        .arg("--binary")
        .arg(request.binary)
        .arg("--extensions")
        .arg(root.join("fixtures/bench/extensions"))
        .arg("--old-flow")
        .arg(root.join("fixtures/bench/old-flow.sh"))
        .arg("--logs")
        .arg(&logs)
        .arg("--rounds")
        .arg(request.rounds.to_string())
        .arg("--fault-rounds")
        .arg(request.fault_rounds.to_string());
    if request.download_only {
        cmd.args(["--only", "download"]);
    }
    eprintln!(
        "==> bench: {} ({} rounds, {} fault rounds; each run's output in {})",
        shown_path(root, &bench),
        request.rounds,
        request.fault_rounds,
        shown_path(root, &logs)
    );
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("could not start {}: {error}", bench.display()))?;
    if !output.status.success() {
        return Err(format!("em-bench-install failed ({})", output.status));
    }
    let raw = String::from_utf8(output.stdout)
        .map_err(|_| "em-bench-install printed something that is not UTF-8".to_owned())?;
    let parsed: Value = serde_json::from_str(&raw)
        .map_err(|error| format!("em-bench-install printed something that is not JSON: {error}"))?;
    let result = Summary::of(
        &parsed,
        utc_timestamp(std::time::SystemTime::now()),
        request.commit,
    )?;

    let json_path = target.join("bench/install.json");
    write_file(&json_path, &result.to_json(raw.trim_end()))?;
    eprintln!("==> bench: wrote {}", shown_path(root, &json_path));
    println!("{}", result.to_markdown());

    if request.write {
        if request.download_only {
            return Err(
                "`--write` needs the whole install benchmark, not `--only download`".into(),
            );
        }
        let path = root.join("BENCHMARKS.md");
        let text = fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let section = format!(
            "{}\n\nReproduce with `{REPRODUCE}` (raw numbers: `target/bench/install.json`; \
             each run's output: `target/bench/install-logs/`).",
            result.to_markdown()
        );
        let updated = replace_section_between(&text, START_MARKER, END_MARKER, &section)
            .map_err(|error| format!("BENCHMARKS.md: {error}"))?;
        write_file(&path, &updated)?;
        eprintln!("==> bench: updated the install section of BENCHMARKS.md");
    }
    Ok(())
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    Value::from(text).to_string()
}

/// A number as JSON with `decimals` places: `null` for NaN and infinities, which JSON
/// cannot write.
fn json_number(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "null".to_owned()
    }
}

/// The runs of one contestant in one phase (or of one download case).
#[derive(Debug, Clone, PartialEq)]
struct Group {
    runs: usize,
    succeeded: usize,
    /// Over the successful runs, in milliseconds (NaN when none succeeded).
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    /// The median of the faults injected per run.
    faults_median: f64,
    /// Download cases: the median and the largest of bytes sent / file size.
    sent_median: f64,
    sent_max: f64,
}

impl Group {
    fn of(runs: &[&Value], file_bytes: f64) -> Group {
        let mut ok: Vec<f64> = runs
            .iter()
            .filter(|run| run["success"].as_bool() == Some(true))
            .filter_map(|run| run["wall_ms"].as_f64())
            .collect();
        ok.sort_by(f64::total_cmp);
        let mut faults: Vec<f64> = runs
            .iter()
            .map(|run| {
                run["faults"]
                    .as_object()
                    .into_iter()
                    .flat_map(|members| members.values())
                    .filter_map(Value::as_f64)
                    .sum()
            })
            .collect();
        faults.sort_by(f64::total_cmp);
        let mut sent: Vec<f64> = runs
            .iter()
            .filter_map(|run| run["bytes_sent"].as_f64())
            .map(|bytes| bytes / file_bytes)
            .collect();
        sent.sort_by(f64::total_cmp);
        Group {
            runs: runs.len(),
            succeeded: ok.len(),
            median_ms: median(&ok),
            min_ms: ok.first().copied().unwrap_or(f64::NAN),
            max_ms: ok.last().copied().unwrap_or(f64::NAN),
            faults_median: median(&faults),
            sent_median: median(&sent),
            sent_max: sent.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn to_json(&self) -> String {
        format!(
            "{{ \"runs\": {}, \"succeeded\": {}, \"median_ms\": {}, \"min_ms\": {}, \
             \"max_ms\": {}, \"faults_median\": {}, \"bytes_sent_over_size_median\": {}, \
             \"bytes_sent_over_size_max\": {} }}",
            self.runs,
            self.succeeded,
            json_number(self.median_ms, 1),
            json_number(self.min_ms, 1),
            json_number(self.max_ms, 1),
            json_number(self.faults_median, 1),
            json_number(self.sent_median, 4),
            json_number(self.sent_max, 4),
        )
    }
}

/// One download case: its name, where it was cut, its runs.
#[derive(Debug)]
struct DownloadCase {
    name: String,
    fault: Option<String>,
    cut_at: Option<f64>,
    group: Group,
}

/// Everything the tables say, computed from em-bench-install's JSON.
#[derive(Debug)]
struct Summary {
    date: String,
    uname: String,
    nproc: usize,
    commit: String,
    version: String,
    apt: String,
    rounds: usize,
    warmup_rounds: usize,
    fault_rounds: usize,
    fault_probability: f64,
    /// Per contestant A, B, C: (no faults, faults). `None` when the install part did not run.
    install: Option<[(Group, Group); 3]>,
    download_rounds: usize,
    download_warmup_rounds: usize,
    download_bytes: f64,
    download: Vec<DownloadCase>,
}

/// `a / b` as a ratio, NaN when either is missing.
fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// `1 round`, `5 rounds`.
fn rounds(n: usize) -> String {
    if n == 1 {
        "1 round".to_owned()
    } else {
        format!("{n} rounds")
    }
}

/// `no warm-up round`, `1 warm-up round`, `2 warm-up rounds`.
fn warmup(n: usize) -> String {
    match n {
        0 => "no warm-up round".to_owned(),
        1 => "1 warm-up round".to_owned(),
        n => format!("{n} warm-up rounds"),
    }
}

fn seconds(ms: f64) -> String {
    if ms.is_finite() {
        format!("{:.2} s", ms / 1e3)
    } else {
        "—".to_owned()
    }
}

fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}×")
    } else {
        "—".to_owned()
    }
}

impl Summary {
    fn of(raw: &Value, date: String, commit: &str) -> Result<Summary, String> {
        let mut summary = Summary {
            date,
            uname: uname(),
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            commit: commit.to_owned(),
            version: raw["version"].as_str().unwrap_or("?").to_owned(),
            apt: String::new(),
            rounds: 0,
            warmup_rounds: 0,
            fault_rounds: 0,
            fault_probability: f64::NAN,
            install: None,
            download_rounds: 0,
            download_warmup_rounds: 0,
            download_bytes: f64::NAN,
            download: Vec::new(),
        };
        let install = &raw["install"];
        if !install.is_null() {
            let count = |key: &str| install[key].as_f64().unwrap_or(0.0) as usize;
            summary.apt = install["apt"].as_str().unwrap_or("?").to_owned();
            summary.rounds = count("rounds");
            summary.warmup_rounds = count("warmup_rounds");
            summary.fault_rounds = count("fault_rounds");
            summary.fault_probability = install["fault_plan"]["probability"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let runs = install["runs"].as_array().map_or(&[][..], Vec::as_slice);
            let group = |phase: &str, contestant: &str| {
                let selected: Vec<&Value> = runs
                    .iter()
                    .filter(|run| {
                        run["phase"].as_str() == Some(phase)
                            && run["contestant"].as_str() == Some(contestant)
                    })
                    .collect();
                Group::of(&selected, 1.0)
            };
            summary.install =
                Some(["A", "B", "C"].map(|c| (group("no_faults", c), group("faults", c))));
        }
        let download = &raw["download"];
        if !download.is_null() {
            summary.download_rounds = download["rounds"].as_f64().unwrap_or(0.0) as usize;
            summary.download_warmup_rounds =
                download["warmup_rounds"].as_f64().unwrap_or(0.0) as usize;
            summary.download_bytes = download["file_bytes"].as_f64().unwrap_or(f64::NAN);
            let measured: Vec<&Value> = download["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|run| run["phase"].as_str() == Some("measured"))
                .collect();
            let mut names: Vec<&str> = Vec::new();
            for run in &measured {
                if let Some(name) = run["case"].as_str()
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
            // Uncut first, then in the order the bench defines them.
            names.sort_by_key(|name| *name != "uncut");
            for name in names {
                let runs: Vec<&Value> = measured
                    .iter()
                    .copied()
                    .filter(|run| run["case"].as_str() == Some(name))
                    .collect();
                summary.download.push(DownloadCase {
                    name: name.to_owned(),
                    fault: runs[0]["fault"].as_str().map(str::to_owned),
                    cut_at: runs[0]["cut_at_bytes"].as_f64(),
                    group: Group::of(&runs, summary.download_bytes),
                });
            }
        }
        if summary.install.is_none() && summary.download.is_empty() {
            return Err("em-bench-install measured nothing".into());
        }
        Ok(summary)
    }

    fn install_group(&self, contestant: usize, faults: bool) -> Option<&Group> {
        self.install.as_ref().map(|groups| {
            let (no_faults, with_faults) = &groups[contestant];
            if faults { with_faults } else { no_faults }
        })
    }

    fn median_of(&self, contestant: usize, faults: bool) -> f64 {
        self.install_group(contestant, faults)
            .map_or(f64::NAN, |g| g.median_ms)
    }

    fn a_over_c(&self) -> f64 {
        ratio(self.median_of(0, false), self.median_of(2, false))
    }

    fn a_over_b(&self) -> f64 {
        ratio(self.median_of(0, false), self.median_of(1, false))
    }

    fn faults_over_no_faults(&self, contestant: usize) -> f64 {
        ratio(
            self.median_of(contestant, true),
            self.median_of(contestant, false),
        )
    }

    fn uncut_ms(&self) -> f64 {
        self.download
            .iter()
            .find(|case| case.fault.is_none())
            .map_or(f64::NAN, |case| case.group.median_ms)
    }

    fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = write!(
            md,
            "Measured {} on `{}` ({} CPUs), commit `{}`, `{}`",
            self.date, self.uname, self.nproc, self.commit, self.version
        );
        if self.install.is_some() {
            let _ = write!(md, ", `{}`", self.apt);
        }
        md.push_str(".\n");
        if let Some(groups) = &self.install {
            let _ = write!(
                md,
                "\n**No faults**: {} of the three contestants after {}; \
                 times are the median, least and most of the successful runs.\n\n\
                 | | contestant | median | min – max | succeeded |\n|---|---|---:|---:|---:|\n",
                rounds(self.rounds),
                warmup(self.warmup_rounds)
            );
            for ((letter, what), (no_faults, _)) in CONTESTANTS.iter().zip(groups) {
                let _ = writeln!(
                    md,
                    "| {letter} | {what} | {} | {} – {} | {}/{} |",
                    seconds(no_faults.median_ms),
                    seconds(no_faults.min_ms),
                    seconds(no_faults.max_ms),
                    no_faults.succeeded,
                    no_faults.runs
                );
            }
            let a_over_c = self.a_over_c();
            let _ = write!(
                md,
                "\nRatios of the medians: A / C = **{}** (target ≤ {TARGET_A_OVER_C:.2}×: {}), \
                 A / B = **{}**.\n",
                times(a_over_c),
                verdict(a_over_c <= TARGET_A_OVER_C),
                times(self.a_over_b())
            );
            let _ = write!(
                md,
                "\n**{:.0}% faults on every request** (503, reset mid-body, truncated body: a \
                 third each; seeded, a seed per round): {}. The median is of the \
                 successful runs, compared with the same contestant's no-fault median.\n\n\
                 | | succeeded | median | vs its no-fault median | faults injected per run (median) |\n\
                 |---|---:|---:|---:|---:|\n",
                self.fault_probability * 100.0,
                rounds(self.fault_rounds)
            );
            for (i, ((letter, _), (_, faults))) in CONTESTANTS.iter().zip(groups).enumerate() {
                let _ = writeln!(
                    md,
                    "| {letter} | {}/{} | {} | {} | {} |",
                    faults.succeeded,
                    faults.runs,
                    seconds(faults.median_ms),
                    times(self.faults_over_no_faults(i)),
                    if faults.faults_median.is_finite() {
                        format!("{:.0}", faults.faults_median)
                    } else {
                        "—".to_owned()
                    }
                );
            }
            let a = &groups[0].1;
            let a_ratio = self.faults_over_no_faults(0);
            let _ = write!(
                md,
                "\nTargets for A under faults: every run succeeds ({}/{}: {}), median ≤ \
                 {TARGET_FAULTS_OVER_NO_FAULTS:.1}× its no-fault median ({}: {}).\n",
                a.succeeded,
                a.runs,
                verdict(a.runs > 0 && a.succeeded == a.runs),
                times(a_ratio),
                verdict(a_ratio <= TARGET_FAULTS_OVER_NO_FAULTS)
            );
        }
        if !self.download.is_empty() {
            let _ = write!(
                md,
                "\n**Download**: {:.0} MiB with `extension-manager fetch URL -o FILE --allow-http`, \
                 {} of every case after {}; a cut case breaks the first \
                 response at the given offset of the file, once.\n\n\
                 | case | median | vs uncut | bytes sent / file size | succeeded |\n\
                 |---|---:|---:|---:|---:|\n",
                self.download_bytes / (1024.0 * 1024.0),
                rounds(self.download_rounds),
                warmup(self.download_warmup_rounds)
            );
            let uncut = self.uncut_ms();
            let mut cut_ratios = Vec::new();
            for case in &self.download {
                let vs = ratio(case.group.median_ms, uncut);
                if case.fault.is_some() {
                    cut_ratios.push(vs);
                }
                let name = match (&case.fault, case.cut_at) {
                    (Some(fault), Some(at)) => format!(
                        "{} at {:.0}%",
                        if fault == "reset" {
                            "reset"
                        } else {
                            "truncated"
                        },
                        at / self.download_bytes * 100.0
                    ),
                    _ => case.name.clone(),
                };
                let sent = if case.group.sent_max > case.group.sent_median + 5e-4 {
                    format!(
                        "{:.3} (max {:.3})",
                        case.group.sent_median, case.group.sent_max
                    )
                } else {
                    format!("{:.3}", case.group.sent_median)
                };
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {sent} | {}/{} |",
                    seconds(case.group.median_ms),
                    times(vs),
                    case.group.succeeded,
                    case.group.runs
                );
            }
            // A cut case without a successful run has no ratio: the target is missed.
            let worst = cut_ratios
                .iter()
                .copied()
                .reduce(|a, b| {
                    if a.is_nan() || b.is_nan() {
                        f64::NAN
                    } else {
                        a.max(b)
                    }
                })
                .unwrap_or(f64::NAN);
            let _ = write!(
                md,
                "\nTarget: a cut download ≤ {TARGET_CUT_OVER_UNCUT:.0}× an uncut one (worst case \
                 {}: {}).",
                times(worst),
                verdict(worst <= TARGET_CUT_OVER_UNCUT)
            );
        }
        md.trim_end().to_owned()
    }

    fn to_json(&self, raw: &str) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\n  \"benchmark\": \"install\",\n  \"date\": {},\n  \"commit\": {},\n  \
             \"machine\": {{ \"nproc\": {}, \"uname\": {} }},\n  \"reproduce\": {},\n  \
             \"summary\": {{\n",
            json_string(&self.date),
            json_string(&self.commit),
            self.nproc,
            json_string(&self.uname),
            json_string(REPRODUCE),
        );
        if let Some(groups) = &self.install {
            for (phase, faults) in [("no_faults", false), ("faults", true)] {
                let _ = writeln!(out, "    \"{phase}\": {{");
                for (i, ((letter, _), (no, with))) in CONTESTANTS.iter().zip(groups).enumerate() {
                    let group = if faults { with } else { no };
                    let comma = if i < 2 { "," } else { "" };
                    let _ = writeln!(out, "      \"{letter}\": {}{comma}", group.to_json());
                }
                out.push_str("    },\n");
            }
            let _ = writeln!(
                out,
                "    \"ratios\": {{ \"A/C\": {}, \"A/B\": {}, \"A faults/no faults\": {}, \
                 \"B faults/no faults\": {}, \"C faults/no faults\": {} }},",
                json_number(self.a_over_c(), 3),
                json_number(self.a_over_b(), 3),
                json_number(self.faults_over_no_faults(0), 3),
                json_number(self.faults_over_no_faults(1), 3),
                json_number(self.faults_over_no_faults(2), 3),
            );
        }
        out.push_str("    \"download\": [");
        let uncut = self.uncut_ms();
        for (i, case) in self.download.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n      {{ \"case\": {}, \"vs_uncut\": {}, \"group\": {} }}",
                if i == 0 { "" } else { "," },
                json_string(&case.name),
                json_number(ratio(case.group.median_ms, uncut), 3),
                case.group.to_json()
            );
        }
        out.push_str(if self.download.is_empty() {
            "]\n"
        } else {
            "\n    ]\n"
        });
        let _ = write!(out, "  }},\n  \"raw\": {raw}\n}}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(phase: &str, contestant: &str, ms: f64, success: bool, faults: u32) -> String {
        format!(
            "{{\"phase\": \"{phase}\", \"contestant\": \"{contestant}\", \"wall_ms\": {ms}, \
             \"success\": {success}, \"faults\": {{\"503\": {faults}}}}}"
        )
    }

    fn sample() -> Value {
        let mut runs = Vec::new();
        for (c, base) in [("A", 1000.0), ("B", 4000.0), ("C", 900.0)] {
            runs.push(run("warmup", c, 99_999.0, true, 0));
            for k in 0..3 {
                runs.push(run("no_faults", c, base + 10.0 * f64::from(k), true, 0));
                runs.push(run(
                    "faults",
                    c,
                    1.2 * base + f64::from(k),
                    c != "C" || k == 0,
                    2,
                ));
            }
        }
        let download = [
            ("uncut", "null", "null", 500.0, 1000.0),
            ("reset-50", "\"reset\"", "500", 900.0, 1000.0),
            ("truncate-25", "\"truncate\"", "250", 1100.0, 1250.0),
        ]
        .iter()
        .map(|(case, fault, at, ms, sent)| {
            format!(
                "{{\"phase\": \"measured\", \"case\": \"{case}\", \"fault\": {fault}, \
                 \"cut_at_bytes\": {at}, \"wall_ms\": {ms}, \"success\": true, \"bytes_sent\": {sent}}}"
            )
        })
        .collect::<Vec<_>>();
        let text = format!(
            "{{\"version\": \"extension-manager 0.1.0\", \"install\": {{\"apt\": \"apt 2.6.1 (amd64)\", \
             \"rounds\": 3, \"warmup_rounds\": 1, \"fault_rounds\": 3, \
             \"fault_plan\": {{\"probability\": 0.2}}, \"runs\": [{}]}}, \
             \"download\": {{\"rounds\": 1, \"file_bytes\": 1000, \"runs\": [{}]}}}}",
            runs.join(","),
            download.join(",")
        );
        serde_json::from_str(&text).expect("valid sample")
    }

    #[test]
    fn medians_ratios_and_success_rates_come_from_the_right_runs() {
        let summary =
            Summary::of(&sample(), "2026-01-01T00:00:00Z".into(), "abc").expect("a summary");
        let a = summary.install_group(0, false).expect("A");
        assert_eq!((a.runs, a.succeeded, a.median_ms), (3, 3, 1010.0));
        let c = summary.install_group(2, true).expect("C");
        assert_eq!((c.runs, c.succeeded, c.median_ms), (3, 1, 1080.0));
        assert_eq!(c.faults_median, 2.0);
        assert!((summary.a_over_c() - 1010.0 / 910.0).abs() < 1e-9);
        assert!((summary.a_over_b() - 1010.0 / 4010.0).abs() < 1e-9);
        assert!((summary.faults_over_no_faults(0) - 1201.0 / 1010.0).abs() < 1e-9);
        assert_eq!(summary.download[0].name, "uncut");
        assert_eq!(summary.download[2].group.sent_median, 1.25);

        let md = summary.to_markdown();
        assert!(
            md.contains("A / C = **1.11×** (target ≤ 1.15×: met)"),
            "{md}"
        );
        assert!(md.contains("| C | 1/3 | 1.08 s |"), "{md}");
        assert!(md.contains("every run succeeds (3/3: met)"), "{md}");
        assert!(
            md.contains("| reset at 50% | 0.90 s | 1.80× | 1.000 | 1/1 |"),
            "{md}"
        );
        assert!(
            md.contains("| truncated at 25% | 1.10 s | 2.20× | 1.250 | 1/1 |"),
            "{md}"
        );
        assert!(md.contains("worst case 2.20×: **missed**"), "{md}");

        let written = summary.to_json("{\"raw\": true}");
        let parsed: Value = serde_json::from_str(&written).expect("install.json is JSON");
        assert_eq!(parsed["raw"]["raw"].as_bool(), Some(true));
        let ratios = &parsed["summary"]["ratios"];
        assert!((ratios["A/C"].as_f64().unwrap_or(0.0) - 1.110).abs() < 1e-3);
        assert_eq!(
            parsed["summary"]["faults"]["C"]["succeeded"].as_f64(),
            Some(1.0)
        );
    }

    #[test]
    fn nothing_succeeded_is_a_dash_not_a_number() {
        assert_eq!(seconds(f64::NAN), "—");
        assert_eq!(times(ratio(1.0, f64::NAN)), "—");
        assert!(Group::of(&[], 1.0).median_ms.is_nan());
    }
}
