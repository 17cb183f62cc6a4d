//! A test session: a temp dir with fake tools first on PATH, a scenario, a state dir, and
//! the extension-manager binary to run against them.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The em-fake-tool binary, built once per test binary when it is missing.
pub fn fake_tool_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            // target/<profile>/deps/<test> -> target/<profile>/em-fake-tool
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test binary lives in target/<profile>/deps");
            let binary = profile_dir.join("em-fake-tool");
            if !binary.exists() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-q", "-p", "em-fake-tool"])
                    .status()
                    .expect("cargo build em-fake-tool");
                assert!(status.success(), "building em-fake-tool failed");
            }
            binary
        })
        .clone()
}

/// One isolated session.
pub struct Session {
    pub dir: tempfile::TempDir,
}

impl Session {
    /// Fake `tools` on PATH, answering as `scenario` (TOML of em-fake-tool) says.
    pub fn new(tools: &[&str], scenario: &str) -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).expect("bin");
        let fake = fake_tool_binary();
        for tool in tools {
            std::os::unix::fs::symlink(&fake, bin.join(tool)).expect("symlink");
        }
        fs::write(dir.path().join("scenario.toml"), scenario).expect("scenario");
        Session { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// extension-manager with PATH = fake tools, then the system's (for sh, env, ...).
    pub fn em(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_extension-manager"));
        let system_path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:{system_path}", self.path().join("bin").display()),
        )
        .env("EM_FAKE_SCENARIO", self.path().join("scenario.toml"))
        .env("EM_FAKE_STATE", self.path().join("fake-state"))
        .env("EM_STATE_DIR", self.path().join("state"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("CI")
        .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.em()
            .args(args)
            .output()
            .expect("extension-manager runs")
    }

    /// The calls the fake tools received, as (tool, args joined by spaces).
    pub fn calls(&self) -> Vec<(String, String)> {
        let Ok(text) = fs::read_to_string(self.path().join("fake-state/calls.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("call json");
                let args: Vec<String> = v["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(|a| a.as_str().expect("str").to_string())
                    .collect();
                (
                    v["tool"].as_str().expect("tool").to_string(),
                    args.join(" "),
                )
            })
            .collect()
    }

    /// The environment each call received.
    pub fn call_envs(&self) -> Vec<serde_json::Value> {
        let Ok(text) = fs::read_to_string(self.path().join("fake-state/calls.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["env"].clone())
            .collect()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
