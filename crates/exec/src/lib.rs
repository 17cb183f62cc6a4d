//! # em-exec: run a tool as an argument vector, and be able to stop all of it
//!
//! Every external tool that extension-manager runs goes through [`Cmd`]:
//!
//! - the program and its arguments are separate values, never one shell string, so a
//!   package name can never become an option or a second command;
//! - the child gets its own process group, and dropping the future of [`Cmd::run`] (which
//!   is how a per-attempt timeout or Ctrl-C cancels an attempt) kills the whole group with
//!   SIGKILL: `apt-get` and the `dpkg` it forked, `npm` and its `node` children, `sh -c`
//!   and whatever it started;
//! - children die with us: the group leader gets `PR_SET_PDEATHSIG(SIGKILL)`, and with
//!   [`supervise_groups`] a forked helper kills every group still running when we die,
//!   even by SIGKILL (see [`supervisor`] for why both);
//! - output is inherited, captured, or both ([`OutputMode::Tee`]: passed through as it
//!   arrives and kept for classification);
//! - [`Cmd::command_line`] prints the command as a user would retype it, for logs and
//!   error messages.
//!
//! It is built on `tokio::process` rather than a thread-per-child library: cancellation is
//! dropping a future, so the child, its pipes and the group kill all live in that future.
//!
//! What it is not: a shell, or a policy. Retrying belongs to `em-retry`, reading a tool's
//! failures to the adapters.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use em_exec::{Cmd, OutputMode};
//! let out = Cmd::new("sh").args(["-c", "echo hello; exit 3"]).output(OutputMode::Capture).run().await.unwrap();
//! assert_eq!(out.code(), 3);
//! assert_eq!(out.stdout_text(), "hello\n");
//! # }
//! ```

mod adapter;
pub mod download;
pub mod supervisor;

pub use adapter::{
    Adapter, Checked, MirrorNotice, OutputCheck, ProgressGauge, Runner, SourceCounts, SourceTally,
    ToolError, ToolErrorKind, ToolFailure, Verdict, as_root, check_argument, find_tool, is_root,
};
pub use supervisor::supervise_groups;

/// `url` with its user info (`user:password@`) replaced by `***`, for every message,
/// log line and report that names a URL: credentials in a URL never reach the screen.
/// Text that is not a URL with user info comes back unchanged.
///
/// ```
/// assert_eq!(
///     em_exec::redact_url("https://user:s3cret@127.0.0.1:8443/a@b?c"),
///     "https://***@127.0.0.1:8443/a@b?c"
/// );
/// assert_eq!(em_exec::redact_url("https://127.0.0.1/x"), "https://127.0.0.1/x");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What happens to the child's stdout and stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// The child writes to our stdout and stderr directly; nothing is kept.
    #[default]
    Inherit,
    /// Kept in [`Output`]; nothing is shown.
    Capture,
    /// Passed through to our stdout and stderr as it arrives, and kept in [`Output`].
    Tee,
    /// Both streams passed through to our stderr as they arrive (stdout stays ours for
    /// requested output), and kept in [`Output`].
    TeeStderr,
}

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// Receives each line a child prints, as it arrives (for log files, progress, tracing).
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// A command to run: a program, its arguments and its environment.
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin_null: bool,
    output: OutputMode,
    lines: Option<LineSink>,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cmd").field(&self.command_line()).finish()
    }
}

impl Cmd {
    /// A command running `program` (looked up on `PATH` unless it contains a `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin_null: false,
            output: OutputMode::Inherit,
            lines: None,
        }
    }

    /// The non-interactive tool environment: `LC_ALL=C` (messages stay matchable, in
    /// English), `DEBIAN_FRONTEND=noninteractive`, and stdin closed.
    pub fn tool(program: impl AsRef<OsStr>) -> Self {
        Cmd::new(program)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin_null()
    }

    /// This command run through `wrapper` (e.g. `sudo -n --`): the environment set for
    /// the child is passed with `env VAR=value`, since wrappers like sudo reset it.
    pub fn wrapped_in(self, wrapper: impl AsRef<OsStr>, wrapper_args: &[&str]) -> Self {
        let mut args: Vec<OsString> = wrapper_args.iter().map(OsString::from).collect();
        let vars: Vec<OsString> = self
            .env
            .iter()
            .filter_map(|(k, v)| {
                v.as_ref().map(|v| {
                    let mut kv = k.clone();
                    kv.push("=");
                    kv.push(v);
                    kv
                })
            })
            .collect();
        if !vars.is_empty() {
            args.push("env".into());
            args.extend(vars);
        }
        args.push(self.program.clone());
        args.extend(self.args.iter().cloned());
        Cmd {
            program: wrapper.as_ref().to_owned(),
            args,
            env: Vec::new(),
            cwd: self.cwd,
            stdin_null: self.stdin_null,
            output: self.output,
            lines: self.lines,
        }
    }

    /// Sends each output line to `sink` as it arrives (captured and teed modes).
    pub fn on_line(mut self, sink: LineSink) -> Self {
        self.lines = Some(sink);
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Gives the child an empty stdin instead of ours (tools must never wait for input).
    pub fn stdin_null(mut self) -> Self {
        self.stdin_null = true;
        self
    }

    /// Chooses what happens to the child's output.
    pub fn output(mut self, mode: OutputMode) -> Self {
        self.output = mode;
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The command as a user would retype it in a POSIX shell, variables set for the
    /// child first: `LC_ALL=C apt-get install -y 'python3>=3.11'`.
    pub fn command_line(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        for (k, v) in &self.env {
            if let Some(v) = v {
                words.push(format!(
                    "{}={}",
                    k.to_string_lossy(),
                    quote(&v.to_string_lossy())
                ));
            }
        }
        words.push(quote(&self.program.to_string_lossy()));
        words.extend(self.args.iter().map(|a| quote(&a.to_string_lossy())));
        words.join(" ")
    }

    /// Runs the command to completion in its own process group.
    ///
    /// Dropping the returned future before it completes kills the child's whole process
    /// group (SIGKILL). A child that exits normally leaves anything it put in the
    /// background alone.
    ///
    /// The child is killed when the thread that spawned it exits (`PR_SET_PDEATHSIG` is
    /// tied to the thread, not the process): spawn from a thread that lives as long as
    /// the command, such as a current-thread runtime's or a multi-thread runtime's
    /// worker, never from a blocking-pool thread that may retire while the child runs.
    pub async fn run(&self) -> Result<Output, ExecError> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).process_group(0).kill_on_drop(true);
        die_with_parent(&mut command);
        for (k, v) in &self.env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if self.stdin_null {
            command.stdin(Stdio::null());
        }
        let piped = self.output != OutputMode::Inherit;
        if piped {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = command.spawn().map_err(|source| self.spawn_error(source))?;
        // Armed until the child has been reaped: from here on, a dropped future kills the group.
        let mut group = GroupGuard::new(child.id().and_then(|id| i32::try_from(id).ok()));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (out_sink, err_sink): (Option<Sink>, Option<Sink>) = match self.output {
            OutputMode::Tee => (
                Some(Box::new(tokio::io::stdout())),
                Some(Box::new(tokio::io::stderr())),
            ),
            OutputMode::TeeStderr => (
                Some(Box::new(tokio::io::stderr())),
                Some(Box::new(tokio::io::stderr())),
            ),
            _ => (None, None),
        };
        let (status, stdout, stderr) = tokio::join!(
            child.wait(),
            drain(stdout, out_sink, self.lines.clone(), Stream::Stdout),
            drain(stderr, err_sink, self.lines.clone(), Stream::Stderr),
        );
        let status = status.map_err(|source| ExecError::Wait {
            command: self.command_line(),
            source,
        })?;
        group.disarm();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn spawn_error(&self, source: io::Error) -> ExecError {
        let program = self.program.to_string_lossy().into_owned();
        match source.kind() {
            io::ErrorKind::NotFound => ExecError::NotFound { program },
            io::ErrorKind::PermissionDenied => ExecError::PermissionDenied { program },
            _ => ExecError::Spawn { program, source },
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command_line())
    }
}

/// Quotes a word for a POSIX shell only when it needs it.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if safe {
        word.to_string()
    } else {
        shlex::try_quote(word)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "").replace('\'', r"'\''")))
    }
}

type Sink = Box<dyn AsyncWrite + Unpin + Send>;

async fn drain(
    source: Option<impl AsyncRead + Unpin>,
    mut sink: Option<Sink>,
    lines: Option<LineSink>,
    stream: Stream,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut source) = source else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match source.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(out) = sink.as_mut() {
                    // A closed stdout of ours (e.g. `| head`) must not stop the child.
                    if out.write_all(&buf[..n]).await.is_err() || out.flush().await.is_err() {
                        sink = None;
                    }
                }
                let line_start = kept.len();
                kept.extend_from_slice(&buf[..n]);
                if let Some(lines) = &lines {
                    emit_lines(&kept, line_start, lines, stream, false);
                }
            }
        }
    }
    if let Some(lines) = &lines {
        emit_lines(&kept, kept.len(), lines, stream, true);
    }
    kept
}

/// Calls `sink` for each line completed by the bytes from `new_from` on (and for the
/// unterminated last line when `at_end`).
fn emit_lines(kept: &[u8], new_from: usize, sink: &LineSink, stream: Stream, at_end: bool) {
    // The line containing `new_from` starts after the last newline before it.
    let start_of_pending = kept[..new_from]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let mut start = start_of_pending;
    if !at_end {
        for (i, b) in kept.iter().enumerate().skip(new_from) {
            if *b == b'\n' {
                sink(
                    stream,
                    String::from_utf8_lossy(&kept[start..i]).trim_end_matches('\r'),
                );
                start = i + 1;
            }
        }
    } else if start < kept.len() {
        sink(
            stream,
            String::from_utf8_lossy(&kept[start..]).trim_end_matches('\r'),
        );
    }
}

/// Makes the child die with us: `PR_SET_PDEATHSIG(SIGKILL)` in the child before it execs.
///
/// If we died between the fork and the `prctl`, the child has already been reparented
/// and no signal will come: it sees a parent other than us and does not run at all.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = i32::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe calls prctl and getppid; it allocates nothing (errors are raw
        // OS errors).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

/// Kills a process group when dropped, unless disarmed; tells the supervisor both.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn new(pgid: Option<i32>) -> Self {
        let pgid = pgid.filter(|p| *p > 0);
        if let Some(pgid) = pgid {
            supervisor::started(pgid);
        }
        GroupGuard { pgid }
    }

    fn disarm(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            supervisor::ended(pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
            supervisor::ended(pgid);
        }
    }
}

/// Sends SIGKILL to every process of group `pgid`.
#[allow(unsafe_code)]
fn kill_group(pgid: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // addresses the group. The group is one we created and have not reaped the leader of,
    // so its id cannot have been reused.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// What a finished child left.
#[derive(Clone, Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, when captured.
    pub stdout: Vec<u8>,
    /// Its stderr, when captured.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code as a shell reports it: the code, or 128 + the signal that killed it.
    pub fn code(&self) -> i32 {
        exit_code(self.status)
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The exit code as a shell reports it: the code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// A command that could not be run at all.
#[derive(Debug)]
pub enum ExecError {
    /// The program is not on `PATH` (shells exit 127 for this).
    NotFound {
        /// The program.
        program: String,
    },
    /// The program is not executable (shells exit 126 for this).
    PermissionDenied {
        /// The program.
        program: String,
    },
    /// Any other reason it could not start.
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// It started, but waiting for it failed.
    Wait {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
}

impl ExecError {
    /// The exit code a shell would give: 127 not found, 126 not executable, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::PermissionDenied { .. } => 126,
            _ => 1,
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::NotFound { program } => write!(f, "{program}: command not found"),
            ExecError::PermissionDenied { program } => {
                write!(f, "{program}: permission denied (is it executable?)")
            }
            ExecError::Spawn { program, source } => {
                write!(f, "{program}: could not start: {source}")
            }
            ExecError::Wait { command, source } => write!(f, "{command}: could not wait: {source}"),
        }
    }
}

impl std::error::Error for ExecError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn command_line_quotes_only_what_needs_it() {
        let cmd = Cmd::new("apt-get").env("LC_ALL", "C").args([
            "install",
            "-y",
            "python3>=3.11",
            "it's",
            "",
        ]);
        assert_eq!(
            cmd.command_line(),
            r#"LC_ALL=C apt-get install -y 'python3>=3.11' "it's" ''"#
        );
    }

    #[tokio::test]
    async fn captures_and_reports_codes() {
        let out = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; kill -TERM $$"])
            .output(OutputMode::Capture)
            .run()
            .await
            .expect("runs");
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.stderr_text(), "err\n");
        assert_eq!(out.code(), 128 + 15);
    }

    #[tokio::test]
    async fn missing_program_is_127() {
        let err = Cmd::new("em-no-such-tool")
            .run()
            .await
            .expect_err("not found");
        assert_eq!(err.exit_code(), 127);
        assert!(err.to_string().contains("em-no-such-tool"));
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("em-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let pidfile = dir.join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let cmd = Cmd::new("sh")
            .args(["-c", &script])
            .output(OutputMode::Capture);
        let run = cmd.run();
        // Give the shell time to start its grandchild, then cancel.
        let timed_out = tokio::time::timeout(Duration::from_millis(500), run).await;
        assert!(timed_out.is_err());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("grandchild started")
            .trim()
            .parse()
            .expect("pid");
        let mut gone = false;
        for _ in 0..100 {
            // /proc/PID disappears once the killed grandchild is reaped by init; a zombie
            // shows state Z.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => gone = true,
                Ok(stat) => gone = stat.split_whitespace().nth(2) == Some("Z"),
            }
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(gone, "grandchild {pid} outlived the cancelled command");
    }
}
