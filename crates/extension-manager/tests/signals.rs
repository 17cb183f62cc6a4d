//! Signals, end to end: a run stopped by any termination signal exits 128 + the signal
//! and leaves no process of its children's groups behind; so does a run killed with
//! SIGKILL, which cannot clean up itself (em-exec's supervisor does it); and Ctrl-C while
//! waiting for another run's lock ends the wait with 130.
//!
//! The extension's one `run` step starts a background `sleep` and waits, after writing
//! both pids, so that the test knows the step is running and which processes to look for.
//! Timing is never asserted: every wait polls, with a generous bound for a loaded machine.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Session;
use extension_manager::state::StateDir;

/// A generous bound for anything that should take well under a second.
const BOUND: Duration = Duration::from_secs(20);

/// A session with the extension `sleeper`, whose run step writes its pids into `pids/`.
fn session() -> Session {
    let session = Session::new(&[], "");
    let root = session.path();
    let pids = root.join("pids");
    for dir in [root.join("extensions"), pids.clone(), root.join("config")] {
        fs::create_dir_all(dir).expect("dir");
    }
    let script = format!(
        "sleep 300 & echo $! > {p}/bg.tmp && mv {p}/bg.tmp {p}/background; \
         echo $$ > {p}/leader.tmp && mv {p}/leader.tmp {p}/leader; wait",
        p = pids.display()
    );
    fs::write(
        root.join("extensions/sleeper.toml"),
        format!(
            "[extension]\nname = \"sleeper\"\nversion = \"1.0.0\"\ndescription = \"sleeps\"\n\
             category = \"test\"\n\n[[install]]\nrun = {script:?}\n"
        ),
    )
    .expect("manifest");
    session
}

/// `extension-manager install sleeper`, started with stderr piped.
fn start_install(session: &Session) -> Child {
    session
        .em()
        .env("XDG_CONFIG_HOME", session.path().join("config"))
        .arg("--extensions-dir")
        .arg(session.path().join("extensions"))
        .args(["install", "sleeper", "--lock-timeout", "10m"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("extension-manager starts")
}

/// The lines of the child's stderr, as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("extension-manager: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the run step's two pids: (shell, background sleep).
fn running_step(session: &Session, child: &mut Child) -> (i32, i32) {
    let pid = |name: &str| -> Option<i32> {
        fs::read_to_string(session.path().join("pids").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let started = Instant::now();
    loop {
        if let (Some(leader), Some(background)) = (pid("leader"), pid("background")) {
            return (leader, background);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("extension-manager exited before the step ran: {status}");
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            panic!("the run step never started");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[allow(unsafe_code)]
fn send(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("a pid");
    // SAFETY: kill(2) with plain integers, to a process this test started.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The exit code once the child has exited (None: killed by a signal), polling up to
/// [`BOUND`].
fn exit_code(child: &mut Child) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < BOUND {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("extension-manager did not exit after the signal");
}

/// The processes, other than zombies, whose process group is `pgid`.
fn live_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name in parentheses: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.len() > 2 && fields[2].parse() == Ok(pgid) && !matches!(fields[0], "Z" | "X")
        })
        .collect()
}

/// Polls until the group `pgid` has no live member; returns those left at the bound.
fn group_dies(pgid: i32) -> Vec<i32> {
    let started = Instant::now();
    loop {
        let left = live_members(pgid);
        if left.is_empty() || started.elapsed() > BOUND {
            for pid in &left {
                send(u32::try_from(*pid).unwrap_or(0), libc::SIGKILL);
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_mid_run(signal: i32) -> (Option<i32>, Vec<i32>) {
    let session = session();
    let mut child = start_install(&session);
    let _lines = stderr_lines(&mut child);
    let (leader, background) = running_step(&session, &mut child);
    // The `mv` that published the leader's pid may not have exited yet: wait for the
    // group to be the shell and its sleep only.
    let started = Instant::now();
    while live_members(leader).len() != 2 && started.elapsed() < BOUND {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        live_members(leader).len(),
        2,
        "the step's shell {leader} and sleep {background} run in one group"
    );
    send(child.id(), signal);
    let code = exit_code(&mut child);
    (code, group_dies(leader))
}

#[test]
fn sighup_mid_run_exits_129_and_leaves_no_process() {
    let (code, left) = stop_mid_run(libc::SIGHUP);
    assert_eq!(code, Some(129));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes of the step outlived the run"
    );
}

#[test]
fn sigterm_mid_run_exits_143_and_leaves_no_process() {
    let (code, left) = stop_mid_run(libc::SIGTERM);
    assert_eq!(code, Some(143));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes of the step outlived the run"
    );
}

#[test]
fn sigusr1_mid_run_exits_138_and_leaves_no_process() {
    let (code, left) = stop_mid_run(libc::SIGUSR1);
    assert_eq!(code, Some(128 + libc::SIGUSR1));
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes of the step outlived the run"
    );
}

#[test]
fn sigkill_mid_run_leaves_no_process() {
    let (code, left) = stop_mid_run(libc::SIGKILL);
    assert_eq!(code, None, "killed, not exited");
    assert_eq!(
        left,
        Vec::<i32>::new(),
        "processes of the step outlived the killed run"
    );
}

#[test]
fn ctrl_c_while_waiting_for_the_run_lock_exits_130() {
    let session = session();
    let state_dir = StateDir::new(session.path().join("state"));
    let held = state_dir
        .lock(Duration::ZERO, "install other", |_| {})
        .expect("the test takes the free lock");
    let mut child = start_install(&session);
    let lines = stderr_lines(&mut child);
    let started = Instant::now();
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("Waiting") && line.contains("install other") => break,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("extension-manager exited without waiting for the lock")
            }
        }
        assert!(started.elapsed() < BOUND, "never waited for the lock");
    }
    send(child.id(), libc::SIGINT);
    let code = exit_code(&mut child);
    let stderr: Vec<String> = lines.try_iter().collect();
    drop(held);
    assert_eq!(code, Some(130));
    assert!(
        stderr.iter().any(|l| l.contains("interrupted")),
        "says it was interrupted: {stderr:?}"
    );
    assert!(!marker(session.path()).exists(), "the step did not run");
}

/// The file the step's shell writes first: present once the step has run at all.
fn marker(root: &Path) -> PathBuf {
    root.join("pids").join("leader")
}
