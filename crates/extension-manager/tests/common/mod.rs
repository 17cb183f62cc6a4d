//! A test session: a temp dir with fake tools first on PATH, a scenario, a state dir, and
//! the extension-manager binary to run against them. A thin layer over
//! `em_test_support::Scene` that adds the binary and its environment.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use em_test_support::Scene;

/// The em-fake-tool binary, built once per test binary.
pub fn fake_tool_binary() -> PathBuf {
    em_test_support::fake_tool().to_path_buf()
}

/// One isolated session.
pub struct Session {
    scene: Scene,
}

impl Session {
    /// Fake `tools` on PATH, answering as `scenario` (TOML of em-fake-tool) says.
    pub fn new(tools: &[&str], scenario: &str) -> Session {
        Session {
            scene: Scene::new(tools, scenario),
        }
    }

    pub fn path(&self) -> &Path {
        self.scene.path()
    }

    /// extension-manager with PATH = fake tools, then the system's (for sh, env, ...).
    pub fn em(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_extension-manager"));
        let system_path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:{system_path}", self.scene.bin().display()),
        )
        .envs(self.scene.env())
        .env("EM_STATE_DIR", self.path().join("state"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
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
        self.scene
            .calls()
            .into_iter()
            .map(|call| (call.tool, call.args.join(" ")))
            .collect()
    }

    /// The environment each call received.
    pub fn call_envs(&self) -> Vec<BTreeMap<String, String>> {
        self.scene
            .calls()
            .into_iter()
            .map(|call| call.env)
            .collect()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
