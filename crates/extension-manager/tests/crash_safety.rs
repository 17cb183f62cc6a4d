//! Crash safety (SPEC section 7), end to end: a run killed with SIGKILL at any point leaves
//! a `state.json` that is valid JSON of version 1 (or none at all), never records a failure
//! it did not see, and the next run finishes the job; the run after that is a no-op. Two
//! installs started at once take turns on the run lock, and the second finds the work done.
//!
//! The extensions are `fixtures/manifests/crash/` (crash-base -> crash-lib -> crash-tool,
//! crash-py -> crash-tool: apt, pip, npm, run steps with `creates`, an env file and
//! validate checks), copied into each test's temp dir with `@ROOT@` replaced by that dir.
//! Every tool they call is em-fake-tool answering success after a short delay, so that a
//! run lasts long enough to be killed in the middle.
//!
//! Kill points are chosen by the fake tools' call log rather than by time where possible:
//! - *during call k*: as soon as the k-th tool call is logged (the tool is still running);
//! - *after call k*: once the k-th call is logged and no tool of the run is alive (the
//!   moments when extension-manager saves state, writes files and spawns the next tool);
//! - *after t ms*: a few purely time-based points, from start-up on;
//! - *during a tool*: as soon as a given tool is called.
//!
//! extension-manager is killed first (so that it cannot see its tools die), then, unless
//! the tools are left alone (as when the OOM killer takes extension-manager alone, where
//! they must die with it), every process of the run, found by the run's `EM_FAKE_STATE` in
//! its environment (the tools are in process groups of their own). Each kill point says where it landed
//! (the tools that were running, or none) and which temp files of atomic writes it left;
//! run with `--nocapture` to see them.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Session, stderr, stdout};

/// The fake tools: what the crash extensions' steps and checks call.
const TOOLS: &[&str] = &[
    "apt-get",
    "apt-cache",
    "dpkg",
    "dpkg-query",
    "npm",
    "python3",
    "crash-setup",
    "crash-check",
];

/// Every extension of the closure of `crash-tool`, with its number of install steps.
const EXTENSIONS: [(&str, usize); 4] = [
    ("crash-base", 1),
    ("crash-lib", 2),
    ("crash-py", 1),
    ("crash-tool", 3),
];

/// The apt packages each extension installs.
const APT: [(&str, &[&str]); 3] = [
    ("crash-base", &["crash-pkg-a", "crash-pkg-b"]),
    ("crash-lib", &["crash-pkg-c"]),
    ("crash-tool", &["crash-pkg-d"]),
];

/// How long each fake call takes: long enough to be caught running, short enough to keep
/// the file fast.
const DELAY_MS: u64 = 15;

/// An upper bound for anything to happen (a loaded machine), never reached when all is well.
const PATIENCE: Duration = Duration::from_secs(30);

fn scenario() -> String {
    format!(
        r#"
# Nothing is installed yet, as dpkg-query says it: an empty inventory (`dpkg-query -W -f
# FORMAT` lists every package), and no match for a package asked by name.
[[call]]
tool = "dpkg-query"
match = "^-W -f [^ ]*\t[^ ]*$"
stdout = ""
delay_ms = {DELAY_MS}

[[call]]
tool = "dpkg-query"
exit = 1
stderr = "dpkg-query: no packages found matching crash-pkg\n"
delay_ms = {DELAY_MS}

# The lists know every package: no `apt-get update` first.
[[call]]
tool = "apt-cache"
match = "^policy "
stdout = "crash-pkg-a:\ncrash-pkg-b:\ncrash-pkg-c:\ncrash-pkg-d:\n"
delay_ms = {DELAY_MS}

[[call]]
tool = "apt-get"
match = "install"
delay_ms = {DELAY_MS}

[[call]]
tool = "npm"
match = "^ls "
stdout = '{{"dependencies": {{}}}}'
delay_ms = {DELAY_MS}

[[call]]
tool = "npm"
match = "^install "
delay_ms = {DELAY_MS}

[[call]]
tool = "python3"
match = "^-m pip install "
delay_ms = {DELAY_MS}

[[call]]
tool = "crash-setup"
write_to_arg = "--out"
content = "done\n"
delay_ms = {DELAY_MS}

[[call]]
tool = "crash-check"
stdout = "ok\n"
delay_ms = {DELAY_MS}
"#
    )
}

/// One temp dir: fake tools, the crash manifests, a state dir, a profile dir, markers.
struct Crash {
    session: Session,
}

impl Crash {
    fn new() -> Crash {
        let session = Session::new(TOOLS, &scenario());
        let root = session.path().to_path_buf();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/manifests/crash");
        let extensions = root.join("extensions");
        fs::create_dir_all(&extensions).expect("extensions dir");
        for (name, _) in EXTENSIONS {
            let file = format!("{name}.toml");
            let text = fs::read_to_string(fixtures.join(&file)).expect("crash fixture");
            let text = text.replace("@ROOT@", &root.display().to_string());
            fs::write(extensions.join(&file), text).expect("manifest");
        }
        for dir in ["markers", "profile.d", "config"] {
            fs::create_dir_all(root.join(dir)).expect("dir");
        }
        Crash { session }
    }

    fn root(&self) -> &Path {
        self.session.path()
    }

    fn state_dir(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The fake tools' state (call log) of one phase: each run gets its own log, so that a
    /// line torn by a kill cannot spill into the next run's.
    fn fake_state(&self, phase: &str) -> PathBuf {
        self.root().join(format!("calls-{phase}"))
    }

    /// extension-manager with the crash manifests, the profile dir, and `phase`'s call log.
    fn em(&self, phase: &str) -> Command {
        let mut cmd = self.session.em();
        cmd.env("EM_FAKE_STATE", self.fake_state(phase))
            .env("EM_PROFILE_DIR", self.root().join("profile.d"))
            // No user config of the machine running the tests.
            .env("XDG_CONFIG_HOME", self.root().join("config"))
            .arg("--extensions-dir")
            .arg(self.root().join("extensions"));
        cmd
    }

    fn run(&self, phase: &str, args: &[&str]) -> Output {
        self.em(phase)
            .args(args)
            .output()
            .expect("extension-manager runs")
    }

    /// The calls of one phase as (tool, args); a line torn by a kill is left out.
    fn calls(&self, phase: &str) -> Vec<(String, String)> {
        let Ok(text) = fs::read_to_string(self.fake_state(phase).join("calls.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let args: Vec<&str> = v["args"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                    .unwrap_or_default();
                (
                    v["tool"].as_str().unwrap_or_default().to_string(),
                    args.join(" "),
                )
            })
            .collect()
    }

    /// Lines in a phase's call log so far (counted by newline: a line being written is not
    /// a call yet).
    fn call_count(&self, phase: &str) -> usize {
        fs::read(self.fake_state(phase).join("calls.jsonl"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    fn read_state(&self) -> Option<serde_json::Value> {
        let path = self.state_dir().join("state.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "state.json is not valid JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Some(value)
    }

    /// Temporary files beside `state.json`, the report and the profile files (a kill
    /// between write and rename leaves one: allowed, and reported).
    fn temp_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        for dir in [
            self.state_dir(),
            self.state_dir().join("reports"),
            self.root().join("profile.d"),
        ] {
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".tmp") {
                        let path = dir.join(name);
                        let path = path.strip_prefix(self.root()).unwrap_or(&path);
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        found
    }
}

/// The status of each extension in a state document, after checking its shape.
fn statuses(state: &serde_json::Value) -> BTreeMap<String, String> {
    assert_eq!(state["version"], 1, "state.json version: {state:#}");
    let extensions = state["extensions"]
        .as_object()
        .unwrap_or_else(|| panic!("state.json has no `extensions` object: {state:#}"));
    extensions
        .iter()
        .map(|(name, e)| {
            let status = e["status"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no status: {state:#}"))
                .to_string();
            assert!(
                matches!(status.as_str(), "installed" | "partial" | "failed"),
                "{name}: unknown status {status}"
            );
            (name.clone(), status)
        })
        .collect()
}

/// When to kill a run.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as the k-th tool call is logged (that tool is still running).
    DuringCall(usize),
    /// Once the k-th call is logged and no tool of the run is alive.
    AfterCall(usize),
    /// This many milliseconds after the start.
    Millis(u64),
    /// As soon as this tool is called (it is still running).
    DuringTool(&'static str),
}

/// What becomes of the tools that a killed run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tools {
    /// Killed too, right after extension-manager (a whole-machine crash, or a killed
    /// process tree).
    Killed,
    /// Left alone by the test (extension-manager alone was killed, e.g. by the OOM
    /// killer): they must die with it (em-exec's PR_SET_PDEATHSIG and supervisor), never
    /// run on while the next run starts.
    LeftAlone,
}

/// Where a kill landed.
#[derive(Debug, PartialEq, Eq)]
enum Landed {
    /// These tools (or `sh` of a run step or check) were running.
    MidCall(Vec<String>),
    /// No tool was running: extension-manager was between tool calls.
    BetweenCalls,
    /// The run ended before the kill point came.
    AfterCompletion,
}

/// The live (not zombie) processes of /proc that `keep` accepts, as (pid, command name);
/// `keep` gets the pid and the fields of `/proc/PID/stat` after the command name (state,
/// ppid, pgrp, ...).
fn processes(keep: impl Fn(u32, &[&str]) -> bool) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 3 || matches!(fields[0], "Z" | "X") || !keep(pid, &fields) {
            continue;
        }
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        // em-exec's supervisor (a fork of extension-manager) is neither a tool nor a run's
        // child at work; it exits right after extension-manager.
        if comm.trim() == "em-supervisor" {
            continue;
        }
        found.push((pid, comm.trim().to_string()));
    }
    found.sort();
    found
}

/// The live children of `pid`.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let ppid = pid.to_string();
    processes(|_, fields| fields[1] == ppid)
}

/// Every live process of a run, whoever its parent is now: the tools extension-manager
/// starts are each in a process group of their own, and a killed run's tools are
/// re-parented, but all of them carry the run's `EM_FAKE_STATE` in their environment.
fn processes_with_env(entry: &str, except: u32) -> Vec<(u32, String)> {
    let entry = entry.as_bytes();
    processes(|pid, _| {
        pid != except
            && fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry))
    })
}

/// SIGKILL to these processes.
fn kill_all(processes: &[(u32, String)]) {
    if processes.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(processes.iter().map(|(pid, _)| pid.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// What one kill point saw.
#[derive(Debug)]
struct KillPoint {
    at: KillAt,
    landed: Landed,
    /// Calls logged when the kill came.
    calls: usize,
    /// The statuses in state.json after the kill (None: no state.json yet).
    state: Option<BTreeMap<String, String>>,
    /// Temporary files of atomic writes left behind (relative to the temp dir).
    temp_files: Vec<String>,
}

impl Crash {
    /// Starts `install crash-tool` and kills it with SIGKILL at `at` (and its tools, unless
    /// they are left alone: then they must die with it); then checks what a crash must
    /// leave: no tool running on, a readable state, no recorded failure, a readable history.
    fn killed_run(&self, phase: &str, at: KillAt, tools: Tools) -> KillPoint {
        let log = fs::File::create(self.root().join(format!("{phase}.stderr"))).expect("log");
        let started = Instant::now();
        let mut child = self
            .em(phase)
            .args(["install", "crash-tool"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn extension-manager");
        let pid = child.id();
        let marker = format!("EM_FAKE_STATE={}", self.fake_state(phase).display());
        let landed = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert_eq!(
                    status.code(),
                    Some(0),
                    "{phase}: the run ended by itself, but not well: {}",
                    fs::read_to_string(self.root().join(format!("{phase}.stderr")))
                        .unwrap_or_default()
                );
                break Landed::AfterCompletion;
            }
            let ready = match at {
                KillAt::DuringCall(k) => self.call_count(phase) >= k,
                KillAt::AfterCall(k) => {
                    let n = self.call_count(phase);
                    n > k || (n == k && children_of(pid).is_empty())
                }
                KillAt::Millis(ms) => started.elapsed() >= Duration::from_millis(ms),
                KillAt::DuringTool(tool) => self.calls(phase).iter().any(|(t, _)| t == tool),
            };
            if ready {
                // Where the kill lands: what runs at this instant (once extension-manager
                // is dead, its tools die with it at once).
                let running = processes_with_env(&marker, pid);
                // extension-manager first, so that it never sees a tool of its die.
                child.kill().expect("SIGKILL extension-manager");
                if tools == Tools::Killed {
                    kill_all(&running);
                }
                break if running.is_empty() {
                    Landed::BetweenCalls
                } else {
                    Landed::MidCall(running.into_iter().map(|(_, name)| name).collect())
                };
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                kill_all(&processes_with_env(&marker, pid));
                panic!("{phase}: {at:?} never came");
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let _ = child.wait();
        // Killed: a shell of a check may have started its command meanwhile, so kill until
        // none is left. Left alone: they must die by themselves.
        let waited = Instant::now();
        loop {
            let left = processes_with_env(&marker, pid);
            if left.is_empty() {
                break;
            }
            assert!(
                waited.elapsed() < PATIENCE,
                "{phase}: the killed run's tools live on: {left:?}"
            );
            if tools == Tools::Killed {
                kill_all(&left);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let calls = self.call_count(phase);

        let state = self.read_state().map(|s| statuses(&s));
        if let Some(state) = &state {
            assert!(
                state.values().all(|s| s != "failed"),
                "{phase} ({at:?}): a killed run recorded a failure it never saw: {state:?}"
            );
        }
        // The history and the report stay readable (a torn history line is skipped).
        let history = self.run(&format!("{phase}-history"), &["history"]);
        assert_eq!(
            history.status.code(),
            Some(0),
            "{phase} ({at:?}): history after the kill: {}",
            stderr(&history)
        );
        KillPoint {
            at,
            landed,
            calls,
            state,
            temp_files: self.temp_files(),
        }
    }

    /// Runs `install crash-tool` to the end: exit 0, every extension installed. An
    /// extension the state already recorded as installed is only checked (up to date);
    /// the others are installed.
    fn finish(&self, phase: &str, before: Option<&BTreeMap<String, String>>) {
        let out = self.run(phase, &["install", "crash-tool", "--output", "json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{phase}: the re-run after a kill must finish the job: {}",
            stderr(&out)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{phase}: report JSON ({e}): {}", stdout(&out)));
        let results = results(&report);
        for (name, _) in EXTENSIONS {
            let was_installed = before
                .and_then(|b| b.get(name))
                .is_some_and(|s| s == "installed");
            let expected = if was_installed {
                "up_to_date"
            } else {
                "installed"
            };
            assert_eq!(
                results.get(name).map(String::as_str),
                Some(expected),
                "{phase}: {name} (state before: {before:?}): {}",
                stderr(&out)
            );
        }
        // What was recorded as installed is not installed again.
        let calls = self.calls(phase);
        for (name, packages) in APT {
            let was_installed = before
                .and_then(|b| b.get(name))
                .is_some_and(|s| s == "installed");
            for package in packages {
                let installs = calls
                    .iter()
                    .filter(|(t, a)| {
                        t == "apt-get"
                            && a.split(' ').any(|w| w == "install")
                            && a.split(' ').any(|w| w == *package)
                    })
                    .count();
                assert_eq!(
                    installs,
                    usize::from(!was_installed),
                    "{phase}: apt-get install of {package} ({name}, state before: {before:?}): {calls:?}"
                );
            }
        }
        self.assert_all_installed(phase);
    }

    /// The state, the files and `status` agree that the whole closure is installed, with
    /// every step completed and what was added recorded.
    fn assert_all_installed(&self, phase: &str) {
        let state = self.read_state().expect("state.json after a finished run");
        let statuses = statuses(&state);
        for (name, steps) in EXTENSIONS {
            assert_eq!(
                statuses.get(name).map(String::as_str),
                Some("installed"),
                "{phase}: {state:#}"
            );
            let record = &state["extensions"][name];
            let completed: Vec<u64> = record["completed_steps"]
                .as_array()
                .map(|a| a.iter().filter_map(|i| i.as_u64()).collect())
                .unwrap_or_default();
            assert_eq!(
                completed,
                (0..steps as u64).collect::<Vec<_>>(),
                "{phase}: {name}'s completed steps: {record:#}"
            );
            assert!(record["error"].is_null(), "{phase}: {name}: {record:#}");
        }
        // dpkg-query always says "not installed", so every package is the install's own,
        // even when it took a killed run and a re-run to get there.
        for (name, packages) in APT {
            let added: Vec<&str> = state["extensions"][name]["added"]["apt"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                added, packages,
                "{phase}: {name}'s added packages: {state:#}"
            );
        }
        let npm = &state["extensions"]["crash-tool"]["added"]["npm"];
        assert_eq!(npm, &serde_json::json!(["crash-npm-tool"]), "{phase}");
        let pip = &state["extensions"]["crash-py"]["added"]["pip"];
        assert_eq!(pip[0]["name"], "crash-py-lib", "{phase}: {pip}");
        for marker in ["crash-lib.done", "crash-tool.done"] {
            let text = fs::read_to_string(self.root().join("markers").join(marker))
                .unwrap_or_else(|e| panic!("{phase}: marker {marker}: {e}"));
            assert_eq!(text, "done\n", "{phase}: {marker}");
        }
        let profile = self.root().join("profile.d/extension-manager-crash-py.sh");
        let env = fs::read_to_string(&profile)
            .unwrap_or_else(|e| panic!("{phase}: {}: {e}", profile.display()));
        assert!(env.contains("export CRASH_PY_HOME="), "{phase}: {env}");

        let status = self.run(&format!("{phase}-status"), &["status", "--output", "json"]);
        assert_eq!(
            status.status.code(),
            Some(0),
            "{phase}: {}",
            stderr(&status)
        );
        let status: serde_json::Value =
            serde_json::from_str(&stdout(&status)).expect("status json");
        let rows = status["extensions"].as_array().expect("status rows");
        assert_eq!(rows.len(), EXTENSIONS.len(), "{phase}: {status:#}");
        for row in rows {
            assert_eq!(row["state"], "installed", "{phase}: {status:#}");
            assert_eq!(row["validation"], "ok", "{phase}: {status:#}");
        }
    }

    /// A further run is a no-op: everything up to date, only the checks ran.
    fn assert_noop(&self, phase: &str) {
        let out = self.run(phase, &["install", "crash-tool", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{phase}: {}", stderr(&out));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("report");
        for (name, result) in results(&report) {
            assert_eq!(result, "up_to_date", "{phase}: {name}: {}", stderr(&out));
        }
        assert_eq!(
            results(&report).len(),
            EXTENSIONS.len(),
            "{phase}: {report:#}"
        );
        let calls = self.calls(phase);
        assert!(
            calls.iter().all(|(t, _)| t == "crash-check"),
            "{phase}: a no-op run ran only checks: {calls:?}"
        );
        assert!(self.read_state().is_some());
        self.assert_all_installed(&format!("{phase}-after"));
    }
}

/// name -> result of an install report.
fn results(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["extensions"]
        .as_array()
        .unwrap_or_else(|| panic!("report without extensions: {report:#}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Kills a fresh run at each point, then finishes the job and checks the no-op; prints
/// where each kill landed.
fn fresh_kill_points(points: &[KillAt], tools: Tools) -> Vec<KillPoint> {
    let mut seen = Vec::new();
    for &at in points {
        let crash = Crash::new();
        let point = crash.killed_run("kill", at, tools);
        crash.finish("rerun", point.state.as_ref());
        crash.assert_noop("noop");
        eprintln!(
            "kill point {:<16} landed {:<40} calls {:>2}  state {:<60} temp files {:?} (after the re-run: {})",
            format!("{:?}", point.at),
            format!("{:?}", point.landed),
            point.calls,
            format!("{:?}", point.state),
            point.temp_files,
            crash.temp_files().len(),
        );
        // Orphans of the killed run end on their own, before their temp dir goes.
        let marker = format!("EM_FAKE_STATE={}", crash.fake_state("kill").display());
        let waited = Instant::now();
        while !processes_with_env(&marker, 0).is_empty() {
            assert!(waited.elapsed() < PATIENCE, "the orphans never ended");
            std::thread::sleep(Duration::from_millis(2));
        }
        seen.push(point);
    }
    seen
}

/// How many calls a whole run makes (measured, so that the kill points cover it all).
fn full_run_calls() -> usize {
    let crash = Crash::new();
    let out = crash.run("full", &["install", "crash-tool"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    crash.assert_all_installed("full");
    let count = crash.call_count("full");
    assert_eq!(count, crash.calls("full").len());
    eprintln!("the calls of a whole run: {:#?}", crash.calls("full"));
    count
}

#[test]
fn a_whole_run_makes_the_calls_the_kill_points_count_on() {
    let calls = full_run_calls();
    // Each apt step reads dpkg's status before it (what is new) and around its apt-get
    // (what it pulled in): three dpkg-query calls. crash-base: 3 dpkg-query + apt-cache +
    // apt-get + check; crash-py: pip list + pip install + check; crash-lib: 3 dpkg-query +
    // apt-cache + apt-get + setup + check; crash-tool: 3 dpkg-query + apt-cache + apt-get +
    // npm ls + npm root + npm install + setup + check.
    assert_eq!(calls, 26, "the kill points below assume 26 calls a run");
}

#[test]
fn killed_during_calls_1_to_9_then_rerun_finishes() {
    let points: Vec<KillAt> = (1..=9).map(KillAt::DuringCall).collect();
    let seen = fresh_kill_points(&points, Tools::Killed);
    assert!(
        seen.iter().all(|p| p.landed != Landed::AfterCompletion),
        "every run was caught before its end: {seen:#?}"
    );
}

#[test]
fn killed_during_calls_10_to_18_then_rerun_finishes() {
    let points: Vec<KillAt> = (10..=18).map(KillAt::DuringCall).collect();
    let seen = fresh_kill_points(&points, Tools::Killed);
    assert!(
        seen.iter().all(|p| p.landed != Landed::AfterCompletion),
        "every run was caught before its end: {seen:#?}"
    );
}

#[test]
fn killed_during_calls_19_to_28_then_rerun_finishes() {
    // 27 and 28 come after the 26 calls of a run: killed (or not) after completion. The
    // 26th call ends a few ms before the run does: only up to the 25th is it sure that the
    // run is caught alive.
    let points: Vec<KillAt> = (19..=28).map(KillAt::DuringCall).collect();
    let seen = fresh_kill_points(&points, Tools::Killed);
    assert!(
        seen.iter()
            .filter(|p| matches!(p.at, KillAt::DuringCall(k) if k <= 25))
            .all(|p| p.landed != Landed::AfterCompletion),
        "every run was caught before its end: {seen:#?}"
    );
}

#[test]
fn killed_between_calls_then_rerun_finishes() {
    let points: Vec<KillAt> = [1, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26]
        .into_iter()
        .map(KillAt::AfterCall)
        .collect();
    fresh_kill_points(&points, Tools::Killed);
}

#[test]
fn killed_at_times_then_rerun_finishes() {
    let points: Vec<KillAt> = [0, 3, 8, 20, 45, 90, 160, 260]
        .into_iter()
        .map(KillAt::Millis)
        .collect();
    fresh_kill_points(&points, Tools::Killed);
}

#[test]
fn killed_alone_its_tools_die_with_it_then_rerun_finishes() {
    let points: Vec<KillAt> = [3, 5, 8, 11, 14]
        .into_iter()
        .map(KillAt::DuringCall)
        .collect();
    let seen = fresh_kill_points(&points, Tools::LeftAlone);
    assert!(
        seen.iter().any(|p| matches!(p.landed, Landed::MidCall(_))),
        "some run was killed with a tool running: {seen:#?}"
    );
}

/// What `remove` may undo must survive a kill in the middle of `apt-get install`: the
/// packages were not there before the install, though they are by the time of the re-run
/// (apt-get finished, or dpkg got far enough, after extension-manager died).
///
/// The executor saves the packages it found missing into `added` before it runs
/// `apt-get install` (likewise npm, pip and downloads); without that, the re-run would see
/// the packages as already there, record `added.apt = []`, and `remove crash-base` would
/// leave them on the machine.
#[test]
fn a_kill_during_apt_get_install_keeps_what_the_install_adds() {
    let crash = Crash::new();
    let point = crash.killed_run("kill", KillAt::DuringTool("apt-get"), Tools::Killed);
    assert!(
        point
            .state
            .as_ref()
            .is_none_or(|s| s.get("crash-base").is_none_or(|st| st == "partial")),
        "killed in crash-base's only step: {point:?}"
    );
    // The packages are on the machine now, as dpkg-query says.
    let installed = scenario()
        .replace(
            "exit = 1\nstderr = \"dpkg-query: no packages found matching crash-pkg\\n\"",
            "stdout = \"install ok installed\\t1.0\\n\"",
        )
        .replace(
            "stdout = \"\"",
            "stdout = \"crash-pkg-a\\tii \\ncrash-pkg-b\\tii \\n\"",
        );
    assert_ne!(installed, scenario());
    fs::write(crash.root().join("scenario.toml"), installed).expect("scenario");
    let out = crash.run("rerun", &["install", "crash-tool"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = crash.read_state().expect("state");
    assert_eq!(
        state["extensions"]["crash-base"]["added"]["apt"],
        serde_json::json!(["crash-pkg-a", "crash-pkg-b"]),
        "{:#}",
        state["extensions"]["crash-base"]
    );
}

#[test]
fn killed_again_and_again_on_one_state_then_rerun_finishes() {
    let crash = Crash::new();
    let mut installed_so_far: Vec<String> = Vec::new();
    let mut last_state = None;
    let points = [
        KillAt::AfterCall(2),
        KillAt::DuringCall(5),
        KillAt::Millis(70),
        KillAt::DuringCall(7),
        KillAt::AfterCall(9),
        KillAt::DuringCall(6),
    ];
    for (i, at) in points.into_iter().enumerate() {
        let point = crash.killed_run(&format!("kill{i}"), at, Tools::Killed);
        eprintln!(
            "chained kill {i} at {at:?}: landed {:?}, calls {}, state {:?}, temp files {:?}",
            point.landed, point.calls, point.state, point.temp_files
        );
        // What a run recorded as installed stays so through later kills.
        let now: Vec<String> = point
            .state
            .iter()
            .flatten()
            .filter(|(_, s)| *s == "installed")
            .map(|(n, _)| n.clone())
            .collect();
        for name in &installed_so_far {
            assert!(
                now.contains(name),
                "{name} lost its installed state: {now:?}"
            );
        }
        installed_so_far = now;
        last_state = point.state;
    }
    crash.finish("rerun", last_state.as_ref());
    crash.assert_noop("noop");
}

#[test]
fn two_concurrent_installs_take_turns_and_the_second_finds_the_work_done() {
    let crash = Crash::new();
    let spawn = |tag: &str| {
        crash
            .em("both")
            // Recorded by the fake tools with each call: which run made it.
            .env("EM_OPT_CRASH_RUN", tag)
            .args(["install", "crash-tool", "--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let a = spawn("a");
    let b = spawn("b");
    let pids = [("a", a.id()), ("b", b.id())];
    let outputs = [
        ("a", a.wait_with_output().expect("a")),
        ("b", b.wait_with_output().expect("b")),
    ];
    let mut winner = None;
    let mut loser = None;
    for (tag, out) in &outputs {
        assert_eq!(out.status.code(), Some(0), "run {tag}: {}", stderr(out));
        let report: serde_json::Value = serde_json::from_str(&stdout(out)).expect("report");
        let results = results(&report);
        assert_eq!(results.len(), EXTENSIONS.len(), "{report:#}");
        if results.values().all(|r| r == "installed") {
            assert!(winner.replace(*tag).is_none(), "both runs installed");
        } else {
            assert!(
                results.values().all(|r| r == "up_to_date"),
                "run {tag} neither installed everything nor found it done: {results:?}"
            );
            assert!(
                loser.replace((*tag, out)).is_none(),
                "neither run installed"
            );
        }
    }
    let winner = winner.expect("one run installed");
    let (loser, loser_out) = loser.expect("one run found the work done");

    // The runs did not interleave: every call of the loser comes after the winner's last.
    let text = fs::read_to_string(crash.fake_state("both").join("calls.jsonl")).expect("calls");
    let calls: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("call json"))
        .collect();
    let by = |c: &serde_json::Value| c["env"]["EM_OPT_CRASH_RUN"].as_str().map(str::to_string);
    let last_of_winner = calls
        .iter()
        .rposition(|c| by(c).as_deref() == Some(winner))
        .expect("the winner made calls");
    let first_of_loser = calls
        .iter()
        .position(|c| by(c).as_deref() == Some(loser))
        .expect("the loser ran its checks");
    assert!(
        last_of_winner < first_of_loser,
        "the second run started working before the first was done: {text}"
    );
    // Every package was installed once, by the winner.
    for (_, packages) in APT {
        for package in packages {
            let installs: Vec<_> = calls
                .iter()
                .filter(|c| c["tool"] == "apt-get")
                .filter(|c| {
                    let args = c["args"].as_array().expect("args");
                    args.iter().any(|a| a == "install") && args.iter().any(|a| a == *package)
                })
                .collect();
            assert_eq!(installs.len(), 1, "{package}: {installs:?}");
            assert_eq!(by(installs[0]).as_deref(), Some(winner));
        }
    }
    // The second said whom it waited for, unless it came after the first had finished.
    let err = stderr(loser_out);
    let winner_pid = pids.iter().find(|(t, _)| *t == winner).expect("pid").1;
    if err.contains("for the run lock") {
        assert!(
            err.contains(&format!("Waiting for the run lock: pid {winner_pid} ")),
            "{err}"
        );
        eprintln!("run {loser} waited for run {winner} (pid {winner_pid})");
    } else {
        eprintln!("run {loser} came after run {winner} had finished");
    }
    crash.assert_all_installed("both");
    crash.assert_noop("noop");
}
