//! Children die with their parent, even when the parent is killed with SIGKILL.
//!
//! The parent is this test binary re-executed to run only [`parent_runs_a_shell`] with
//! `EM_EXEC_TEST_DIR` set (without it, that test does nothing): it runs
//! `sh -c 'sleep 300 & ...; wait'` through em-exec, and the test kills it with SIGKILL
//! once the shell and its background `sleep` have written their pids.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use em_exec::{Cmd, OutputMode};

const DIR: &str = "EM_EXEC_TEST_DIR";
const SUPERVISED: &str = "EM_EXEC_TEST_SUPERVISED";

/// The parent's part: run the shell until killed.
#[test]
fn parent_runs_a_shell() {
    let Some(dir) = std::env::var_os(DIR).map(PathBuf::from) else {
        return;
    };
    if std::env::var_os(SUPERVISED).is_some() {
        em_exec::supervise_groups().expect("the supervisor starts");
    }
    let script = format!(
        "sleep 300 & echo $! > {dir}/background.tmp && mv {dir}/background.tmp {dir}/background; echo $$ > {dir}/leader.tmp && mv {dir}/leader.tmp {dir}/leader; wait",
        dir = dir.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _ = runtime.block_on(
        Cmd::new("sh")
            .args(["-c", &script])
            .output(OutputMode::Capture)
            .run(),
    );
}

/// Starts the parent, waits for the shell's pids, kills the parent with SIGKILL.
fn kill_parent_mid_run(dir: &Path, supervised: bool) -> (i32, i32) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "parent_runs_a_shell", "--nocapture"])
        .env(DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if supervised {
        command.env(SUPERVISED, "1");
    }
    let mut parent = command.spawn().expect("spawn the parent");
    let started = Instant::now();
    let pid = |name: &str| -> Option<i32> {
        std::fs::read_to_string(dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (leader, background) = loop {
        if let (Some(l), Some(b)) = (pid("leader"), pid("background")) {
            break (l, b);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = parent.kill();
            panic!("the shell never started");
        }
        if let Ok(Some(status)) = parent.try_wait() {
            panic!("the parent exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    parent.kill().expect("SIGKILL the parent");
    parent.wait().expect("reap the parent");
    (leader, background)
}

/// Whether `pid` is gone or a zombie.
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Polls until every pid is dead, up to a generous bound.
fn all_die(pids: &[i32]) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if pids.iter().all(|p| is_dead(*p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[allow(unsafe_code)]
fn kill(pid: i32) {
    // SAFETY: kill(2) with plain integers; cleanup of a process this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

#[test]
fn the_group_leader_dies_with_its_parent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (leader, background) = kill_parent_mid_run(dir.path(), false);
    let died = all_die(&[leader]);
    // Without the supervisor the background sleep is out of reach: clean it up.
    kill(background);
    kill(leader);
    assert!(died, "the shell {leader} outlived its SIGKILLed parent");
}

#[test]
fn the_supervisor_kills_the_whole_group_when_the_parent_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (leader, background) = kill_parent_mid_run(dir.path(), true);
    let died = all_die(&[leader, background]);
    kill(background);
    kill(leader);
    assert!(
        died,
        "the shell {leader} or its background sleep {background} outlived the SIGKILLed parent"
    );
}
