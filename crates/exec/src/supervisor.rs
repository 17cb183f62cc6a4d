//! The group supervisor: a forked helper that kills the process groups of our children
//! when we die, however we die.
//!
//! Dropping a [`Cmd::run`](crate::Cmd::run) future kills the child's group, and the child
//! itself gets `PR_SET_PDEATHSIG(SIGKILL)`; neither helps the grandchildren (`tar` under
//! `sh`, `dpkg` under `apt-get`) when we are killed with SIGKILL or by the OOM killer: the
//! group leader dies, the rest of its group runs on. The supervisor covers that case.
//!
//! [`supervise_groups`] forks a helper that holds the read end of a pipe; we keep the
//! write end (close-on-exec, so no child inherits it) and send it each group id when a
//! child starts, and its negation when the child has been reaped or its group killed.
//! When we die, the kernel closes the write end; the helper reads end-of-file, sends
//! SIGKILL to every group still listed, and exits. It ignores the usual termination
//! signals (a Ctrl-C reaches the whole foreground group, the helper included): it lives
//! exactly as long as we do, plus the instant it takes to clean up.
//!
//! The helper runs only async-signal-safe code (read, kill, _exit, fixed-size buffers),
//! so forking it from a process that already has threads is sound, though calling
//! [`supervise_groups`] first thing in `main` keeps its copy of our memory small.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::sync::OnceLock;

/// The write end of the pipe to the helper, once it runs.
static HELPER: OnceLock<File> = OnceLock::new();

/// How many groups the helper can keep track of at once (far more than `--jobs` allows).
const MAX_GROUPS: usize = 1024;

/// Starts the group supervisor for this process (once; later calls do nothing).
///
/// From then on, every process group started by [`Cmd::run`](crate::Cmd::run) is killed
/// with SIGKILL if this process dies while the group's command is running, even by
/// SIGKILL. Without it, only the group leader dies with us (`PR_SET_PDEATHSIG`).
///
/// Limits: a group we may not signal (a child that became root through `sudo`) is out of
/// the helper's reach as it is out of ours; a group whose leader was reaped by init just
/// before the helper acts could in theory have had its id reused by then.
///
/// Errors: the pipe or the fork failed (the process runs on unsupervised).
#[allow(unsafe_code)]
pub fn supervise_groups() -> io::Result<()> {
    if HELPER.get().is_some() {
        return Ok(());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass, of the right size.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child only calls async-signal-safe functions (see `watch`) and never
    // returns; the parent goes on as usual.
    match unsafe { libc::fork() } {
        -1 => {
            let error = io::Error::last_os_error();
            // SAFETY: closing the two descriptors we just created and own.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            Err(error)
        }
        0 => {
            // SAFETY: the helper's copy of the write end must go, or it never sees EOF.
            unsafe { libc::close(write_end) };
            watch(read_end)
        }
        _ => {
            // SAFETY: the parent no longer needs the read end; the write end is ours.
            let file = unsafe {
                libc::close(read_end);
                File::from_raw_fd(write_end)
            };
            // Only the first caller gets here with HELPER empty on a single thread; a racing
            // second helper would see EOF at once and exit.
            let _ = HELPER.set(file);
            Ok(())
        }
    }
}

/// Tells the helper that group `pgid` started.
pub(crate) fn started(pgid: i32) {
    send(pgid);
}

/// Tells the helper that group `pgid` needs no killing any more.
pub(crate) fn ended(pgid: i32) {
    send(-pgid);
}

fn send(value: i32) {
    if let Some(mut pipe) = HELPER.get() {
        // Four bytes: one atomic pipe write. A dead helper (EPIPE) changes nothing for us.
        let _ = pipe.write_all(&value.to_ne_bytes());
    }
}

/// The helper: collect group ids until EOF, then kill what is left, and exit.
#[allow(unsafe_code)]
fn watch(pipe: libc::c_int) -> ! {
    // SAFETY: everything below is async-signal-safe (signal, prctl, close, read, kill,
    // _exit) and works on stack buffers only.
    unsafe {
        for signal in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGALRM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_IGN);
        }
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_NAME, c"em-supervisor".as_ptr());
        // Our stdout may be a pipe someone waits on for EOF: do not hold it open.
        for fd in 0..=2 {
            libc::close(fd);
        }
        let mut groups = [0i32; MAX_GROUPS];
        let mut count = 0;
        let mut record = [0u8; 4];
        let mut filled = 0;
        loop {
            let n = libc::read(
                pipe,
                record[filled..].as_mut_ptr().cast(),
                record.len() - filled,
            );
            if n == 0 {
                break;
            }
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                break;
            }
            filled += n.unsigned_abs();
            if filled < record.len() {
                continue;
            }
            filled = 0;
            let value = i32::from_ne_bytes(record);
            if value > 0 {
                if count < MAX_GROUPS {
                    groups[count] = value;
                    count += 1;
                }
            } else if let Some(i) = groups[..count]
                .iter()
                .position(|g| *g == value.wrapping_neg())
            {
                groups[i] = groups[count - 1];
                count -= 1;
            }
        }
        for pgid in &groups[..count] {
            libc::kill(-pgid, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}
