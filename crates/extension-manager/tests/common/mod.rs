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
    ///
    /// apt's lists are the session's own (`APT_CONFIG`), fresh and holding one list file,
    /// so that no run depends on the age of the machine's lists; [`Session::empty_apt_lists`]
    /// makes them a fresh image's.
    pub fn new(tools: &[&str], scenario: &str) -> Session {
        let session = Session {
            scene: Scene::new(tools, scenario),
        };
        let lists = session.apt_lists();
        std::fs::create_dir_all(lists.join("partial")).expect("apt lists dir");
        std::fs::write(lists.join("127.0.0.1_debian_dists_stable_InRelease"), "")
            .expect("a list file");
        std::fs::write(
            session.path().join("apt.conf"),
            format!("Dir::State::Lists \"{}/\";\n", lists.display()),
        )
        .expect("apt.conf");
        session
    }

    /// Fake `tools` where every call of `tool` whose arguments match `pattern` exits 1,
    /// replaying the captured `output` (fixtures/outputs/) on stderr.
    pub fn failing(tools: &[&str], tool: &str, pattern: &str, output: &str) -> Session {
        Session::new(
            tools,
            &format!(
                "[[call]]\ntool = \"{tool}\"\nmatch = \"{pattern}\"\nexit = 1\noutput = \"{output}\"\n"
            ),
        )
    }

    /// The session's apt lists directory.
    pub fn apt_lists(&self) -> std::path::PathBuf {
        self.path().join("apt-lists")
    }

    /// Empties the apt lists, as on a fresh image: the next apt step updates first.
    #[allow(dead_code)]
    pub fn empty_apt_lists(&self) {
        std::fs::remove_dir_all(self.apt_lists()).expect("remove the lists");
        std::fs::create_dir_all(self.apt_lists()).expect("apt lists dir");
    }

    pub fn path(&self) -> &Path {
        self.scene.path()
    }

    /// The directory of the fake tools (to make it the whole `PATH`).
    pub fn bin(&self) -> PathBuf {
        self.scene.bin()
    }

    /// `extension-manager --extensions-dir EXTS ARGS` run in the session's directory, with
    /// profile.d scripts under it.
    pub fn run_with_extensions(&self, exts: &str, args: &[&str]) -> Output {
        self.em()
            .current_dir(self.path())
            .env("EM_PROFILE_DIR", self.path().join("profile.d"))
            .arg("--extensions-dir")
            .arg(exts)
            .args(args)
            .output()
            .expect("extension-manager runs")
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
        .env("APT_CONFIG", self.path().join("apt.conf"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
        cmd
    }

    /// Writes the session's `extensions/NAME.toml`: an `[extension]` table (`name`,
    /// `version`, a description, category `test`), then `body`.
    pub fn write_extension(&self, name: &str, version: &str, body: &str) {
        let dir = self.path().join("extensions");
        std::fs::create_dir_all(&dir).expect("extensions dir");
        let text = format!(
            "[extension]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"test {name}\"\ncategory = \"test\"\n\n{body}"
        );
        std::fs::write(dir.join(format!("{name}.toml")), text).expect("manifest");
    }

    /// [`Session::em`] over the session's `extensions/` directory, with `[extension.env]`
    /// files going to the session's `profile.d/`.
    pub fn em_extensions(&self) -> Command {
        let mut cmd = self.em();
        cmd.env("EM_PROFILE_DIR", self.path().join("profile.d"))
            .arg("--extensions-dir")
            .arg(self.path().join("extensions"));
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

/// `exit`, stdout and stderr of a finished run, with the parts that change between runs
/// replaced: the session's path, times, durations (with the padding before them: a
/// table's column width follows the digits), run ids, log names and `duration_ms` values.
/// What the session snapshots compare.
pub fn transcript(s: &Session, out: &Output) -> String {
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or_else(|| "killed".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.replace(&s.path().display().to_string(), "[SESSION]");
    let rules = [
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (r" +\d+m \d+s\b", " [DUR]"),
        (r" +\d+(\.\d+)?(ms|s)\b", " [DUR]"),
        (r"\b\d{8}T\d{6}Z?-[0-9a-f]+\b", "[RUN]"),
        (r"_logs/[^ \n]*", "_logs/[LOG]"),
        (r#""duration_ms": ?\d+"#, r#""duration_ms": [MS]"#),
    ];
    rules.iter().fold(text, |t, (re, to)| {
        regex_lite::Regex::new(re)
            .expect("regex")
            .replace_all(&t, *to)
            .into_owned()
    })
}
