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
pub mod packages;
pub mod supervisor;

pub use adapter::{
    ASSUME_NON_ROOT_VAR, Adapter, Checked, MirrorNotice, OutputCheck, ProgressGauge, Runner,
    SourceCounts, SourceTally, TAIL_LINE, ToolError, ToolErrorKind, ToolFailure, Verdict, as_root,
    check_argument, find_tool, forbid_sudo, is_root,
};
pub use supervisor::supervise_groups;

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
    /// Both streams passed through to our stderr line by line as they arrive (stdout stays
    /// ours for requested output), each line made [`printable`], and kept in [`Output`].
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

/// Receives each line a child prints, as it arrives (for log files, progress, tracing):
/// without its newline, made [`printable`], cut at [`MAX_LINE`] bytes.
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
    keep: usize,
    run_as: Option<RunAs>,
}

/// Whom a command runs as when started by root: see [`Cmd::as_user`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Every group the user is in (the supplementary groups, as `initgroups` would set
    /// them: found with `getgrouplist` before the fork, since the child may not allocate).
    pub groups: Vec<u32>,
    /// The login name (`USER`, `LOGNAME`).
    pub name: String,
    /// The home directory (`HOME`, and the working directory).
    pub home: PathBuf,
}

impl RunAs {
    /// A login-like `PATH` for the user: `~/.local/bin` first (pipx, pip --user), then the
    /// system's directories, sbin included (checks such as `command -v iotop` find what
    /// root's PATH finds).
    pub fn login_path(&self) -> String {
        format!("{}/.local/bin:{LOGIN_PATH}", self.home.display())
    }
}

/// Variables that name the caller's own per-user places: a command run as another user
/// ([`Cmd::as_user`]) does not inherit them (root's `PIPX_HOME` or `XDG_CACHE_HOME` would
/// send a user's pipx or pip into root's directories).
pub const CALLERS_PLACES: [&str; 22] = [
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "PIPX_HOME",
    "PIPX_BIN_DIR",
    "PIPX_MAN_DIR",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
    "PIP_CACHE_DIR",
    "CARGO_HOME",
    "CARGO_INSTALL_ROOT",
    "RUSTUP_HOME",
    "GOPATH",
    "GOBIN",
    "GOCACHE",
    "GOMODCACHE",
    "GEM_HOME",
    "GEM_PATH",
    "npm_config_prefix",
    "npm_config_cache",
];

/// The system part of a login `PATH`, sbin directories included: what a command run as a
/// user or as root sees (Debian's login PATH for users leaves out the sbin ones, so that
/// `validate` checks of tools in /usr/sbin failed for a sudo user).
pub const LOGIN_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

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
            keep: DEFAULT_KEEP,
            run_as: None,
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
            keep: self.keep,
            run_as: self.run_as,
        }
    }

    /// Runs the child as `user`: in the child, before exec, the supplementary groups are
    /// set (`setgroups`, as `initgroups` would), then the group id, then the user id (in
    /// that order: once the user id is dropped, the groups can no longer be changed).
    /// `HOME`, `USER`, `LOGNAME` and a login-like `PATH` ([`RunAs::login_path`]) are
    /// set, and the child starts in the home directory; the variables that name our own
    /// per-user places ([`CALLERS_PLACES`]: XDG dirs, pipx/cargo/go/gem homes, ...) are
    /// removed unless this command set them, so the user's tools use the user's own.
    /// Needs root; a failed switch fails the spawn, so nothing ever runs as root by
    /// mistake.
    ///
    /// ```
    /// use em_exec::{Cmd, RunAs};
    /// let alice = RunAs { uid: 1000, gid: 1000, groups: vec![1000, 27], name: "alice".into(), home: "/home/alice".into() };
    /// let cmd = Cmd::new("id").as_user(&alice);
    /// assert_eq!(cmd.run_as(), Some(&alice));
    /// assert!(cmd.command_line().contains("HOME=/home/alice"));
    /// ```
    pub fn as_user(mut self, user: &RunAs) -> Self {
        for key in CALLERS_PLACES {
            if !self.env.iter().any(|(k, _)| k == key) {
                self = self.env_remove(key);
            }
        }
        self = self
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("PATH", user.login_path())
            .current_dir(user.home.clone());
        self.run_as = Some(user.clone());
        self
    }

    /// Whom the command runs as, when not as ourselves ([`Cmd::as_user`]).
    pub fn run_as(&self) -> Option<&RunAs> {
        self.run_as.as_ref()
    }

    /// Sends each output line to `sink` as it arrives (captured and teed modes).
    pub fn on_line(mut self, sink: LineSink) -> Self {
        self.lines = Some(sink);
        self
    }

    /// Keeps at most the last `bytes` of each captured stream in [`Output`] (default
    /// [`DEFAULT_KEEP`]); lines still reach the [`on_line`](Self::on_line) sink as they come.
    pub fn keep_at_most(mut self, bytes: usize) -> Self {
        self.keep = bytes.max(1);
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

    /// Runs the command once, capturing its output, for its stdout: a command that cannot
    /// start or exits non-zero is an error naming the command line, its exit code and its
    /// stderr (queries such as `npm view` or `apt-cache show`, not retried operations).
    pub async fn stdout(self) -> Result<String, String> {
        let line = self.command_line();
        let out = self
            .output(OutputMode::Capture)
            .run()
            .await
            .map_err(|e| format!("{line}: {e}"))?;
        if !out.success() {
            return Err(format!(
                "{line} exited {}: {}",
                out.code(),
                out.stderr_text().trim()
            ));
        }
        Ok(out.stdout_text())
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
        // First: a change of credentials clears PR_SET_PDEATHSIG, so the switch must come
        // before die_with_parent sets it (pre_exec closures run in order).
        if let Some(user) = &self.run_as {
            switch_user(&mut command, user);
        }
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
        // Tool output relayed to our stderr goes line by line, made printable; `Tee` (the
        // `retry` command's own command) passes stdout through untouched, as it promises.
        let echo_lines = self.output == OutputMode::TeeStderr;
        let (status, stdout, stderr) = tokio::join!(
            child.wait(),
            drain(
                stdout,
                out_sink,
                self.lines.clone(),
                Stream::Stdout,
                self.keep,
                echo_lines
            ),
            drain(
                stderr,
                err_sink,
                self.lines.clone(),
                Stream::Stderr,
                self.keep,
                echo_lines
            ),
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

/// The longest line handed to a [`LineSink`] or echoed by [`OutputMode::TeeStderr`]: the
/// rest of a longer line is counted, not kept (`... [12345 more bytes]`), so that a tool
/// printing 400 MB without a newline costs us 64 KiB, not 400 MB.
pub const MAX_LINE: usize = 64 * 1024;

/// How much of each stream [`Cmd::run`] keeps by default in [`Output`]: the last 16 MiB.
/// Far more than any tool's message or listing (`dpkg-query` of a full system is about
/// 100 KiB); what a runaway tool prints beyond it is dropped from the front.
pub const DEFAULT_KEEP: usize = 16 * 1024 * 1024;

/// The last `limit` bytes of a stream. Trimmed only when twice the limit is reached, so
/// each byte is moved at most a bounded number of times: linear in the stream's length.
struct Tail {
    bytes: Vec<u8>,
    limit: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        if data.len() >= self.limit {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&data[data.len() - self.limit..]);
            return;
        }
        self.bytes.extend_from_slice(data);
        if self.bytes.len() >= 2 * self.limit.max(8192) {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.bytes.len() > self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
        self.bytes
    }
}

/// Splits a stream into lines as it arrives, looking at each byte once (the pending line
/// is kept, never rescanned), and keeping at most [`MAX_LINE`] bytes of a line.
#[derive(Default)]
struct LineSplitter {
    pending: Vec<u8>,
    /// Bytes of the pending line beyond [`MAX_LINE`], counted and dropped.
    cut: u64,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit` with each line it completes, made [`printable`].
    fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(String)) {
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            self.take(&data[..i]);
            emit(self.line());
            data = &data[i + 1..];
        }
        self.take(data);
    }

    /// The unterminated last line, if any.
    fn finish(&mut self, emit: &mut dyn FnMut(String)) {
        if !self.pending.is_empty() || self.cut > 0 {
            emit(self.line());
        }
    }

    fn take(&mut self, part: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.pending.len());
        let kept = room.min(part.len());
        self.pending.extend_from_slice(&part[..kept]);
        self.cut += (part.len() - kept) as u64;
    }

    fn line(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending);
        let mut line = printable(text.trim_end_matches('\r')).into_owned();
        if self.cut > 0 {
            line.push_str(&format!(" ... [{} more bytes]", self.cut));
        }
        self.pending.clear();
        self.cut = 0;
        line
    }
}

async fn drain(
    source: Option<impl AsyncRead + Unpin>,
    mut sink: Option<Sink>,
    line_sink: Option<LineSink>,
    stream: Stream,
    keep: usize,
    echo_lines: bool,
) -> Vec<u8> {
    let mut kept = Tail {
        bytes: Vec::new(),
        limit: keep,
    };
    let Some(mut source) = source else {
        return kept.finish();
    };
    let mut splitter = LineSplitter::default();
    let splitting = line_sink.is_some() || echo_lines;
    let mut lines: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match source.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !echo_lines && let Some(out) = sink.as_mut() {
            // A closed stdout of ours (e.g. `| head`) must not stop the child.
            if out.write_all(&buf[..n]).await.is_err() || out.flush().await.is_err() {
                sink = None;
            }
        }
        kept.push(&buf[..n]);
        if splitting {
            splitter.feed(&buf[..n], &mut |line| lines.push(line));
            deliver(&mut lines, &line_sink, &mut sink, echo_lines, stream).await;
        }
    }
    if splitting {
        splitter.finish(&mut |line| lines.push(line));
        deliver(&mut lines, &line_sink, &mut sink, echo_lines, stream).await;
    }
    kept.finish()
}

/// Hands completed lines to the line sink, and echoes them when the mode echoes lines.
async fn deliver(
    lines: &mut Vec<String>,
    line_sink: &Option<LineSink>,
    sink: &mut Option<Sink>,
    echo_lines: bool,
    stream: Stream,
) {
    for line in lines.drain(..) {
        if let Some(f) = line_sink {
            f(stream, &line);
        }
        if echo_lines && let Some(out) = sink.as_mut() {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            if out.write_all(&bytes).await.is_err() || out.flush().await.is_err() {
                *sink = None;
            }
        }
    }
}

/// `line` made safe to show on a terminal or in a CI log: control characters other than
/// tab (ESC, bare CR, backspace, DEL, C1 codes) and the bidirectional overrides are written
/// as escapes (`\x1b`, `\u{202e}`), and a line that GitHub Actions would read as a workflow
/// command (`::error::...`, leading spaces ignored) gets a `\` before its first colon.
///
/// Every text quoted from a tool or a server goes through this (or [`printable_text`])
/// before it reaches the terminal, a log file or a report: what a server sends must not
/// move our cursor, rewrite our status lines, or annotate a CI run.
///
/// ```
/// assert_eq!(em_exec::printable("ok\x1b[2Jgone\r"), "ok\\x1b[2Jgone\\x0d");
/// assert_eq!(em_exec::printable("  ::error::pwned"), "  \\::error::pwned");
/// assert_eq!(em_exec::printable("plain\ttext"), "plain\ttext");
/// ```
pub fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    let needs_escape = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let command = line.trim_start().starts_with("::");
    if !command && !line.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut defused = !command;
    for c in line.chars() {
        if !defused && c == ':' {
            out.push('\\');
            defused = true;
        }
        if needs_escape(c) {
            match u32::from(c) {
                code @ 0..=0xff => out.push_str(&format!("\\x{code:02x}")),
                code => out.push_str(&format!("\\u{{{code:x}}}")),
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`printable`] for a text of several lines: each line on its own, the newlines kept.
pub fn printable_text(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The archive suffixes npm and pip read as a local file when a file of that name exists
/// in the working directory (`evil.tgz`, `evil.whl`): longest first.
const ARCHIVE_SUFFIXES: [&str; 14] = [
    ".tar.lzma",
    ".tar.bz2",
    ".tar.zst",
    ".tar.gz",
    ".tar.xz",
    ".tar.lz",
    ".tbz2",
    ".tbz",
    ".tgz",
    ".txz",
    ".tlz",
    ".tar",
    ".whl",
    ".zip",
];

/// The archive suffix `text` ends with, compared case-insensitively, if any: what makes a
/// package name a local file to npm and pip (their grammars refuse it).
///
/// ```
/// assert_eq!(em_exec::archive_suffix("evil.TAR.GZ"), Some(".tar.gz"));
/// assert_eq!(em_exec::archive_suffix("socket.io"), None);
/// ```
pub fn archive_suffix(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    ARCHIVE_SUFFIXES.into_iter().find(|s| lower.ends_with(s))
}

/// `url` with its userinfo (`user:password@`) replaced by `***`, for anything shown or
/// written: status lines, logs, reports, metrics. Anything without userinfo comes back as
/// it was.
///
/// ```
/// assert_eq!(em_exec::redact_url("https://user:pass@127.0.0.1:8080/x?y"), "https://***@127.0.0.1:8080/x?y");
/// assert_eq!(em_exec::redact_url("https://127.0.0.1/a@b"), "https://127.0.0.1/a@b");
/// ```
pub fn redact_url(url: &str) -> String {
    redact_urls(url)
}

/// [`redact_url`] for every URL inside a text (a command line, a message, a label).
///
/// ```
/// assert_eq!(
///     em_exec::redact_urls("curl -fsSL 'https://u:p@127.0.0.1/f' -o f; ftp://a@b/"),
///     "curl -fsSL 'https://***@127.0.0.1/f' -o f; ftp://***@b/"
/// );
/// ```
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let has_scheme = before[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let authority_len = after
            .find(|c: char| "/?#".contains(c) || c.is_whitespace() || "'\"<>`".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) if has_scheme => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

/// Makes the child run as `user` (see [`Cmd::as_user`]).
#[allow(unsafe_code)]
fn switch_user(command: &mut tokio::process::Command, user: &RunAs) {
    let groups: Vec<libc::gid_t> = user.groups.clone();
    let (uid, gid) = (user.uid, user.gid);
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // async-signal-safe calls setgroups, setgid and setuid on data prepared before the
    // fork; it allocates nothing (errors are raw OS errors).
    unsafe {
        command.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
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
    async fn as_user_switches_groups_gid_uid_and_the_environment() {
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: switching users needs root");
            return;
        }
        let home = tempfile::tempdir().expect("tempdir");
        let nobody = RunAs {
            uid: 65534,
            gid: 65534,
            groups: vec![65534, 100],
            name: "nobody".into(),
            home: home.path().to_path_buf(),
        };
        let out = Cmd::new("sh")
            .args([
                "-c",
                "id -u; id -g; id -G; pwd; echo $HOME $USER $LOGNAME; echo $PATH; \
                 echo \"${PIPX_HOME-unset} ${XDG_CACHE_HOME-unset} $GOBIN\"",
            ])
            .env("PIPX_HOME", "/root/.local/pipx")
            .as_user(&nobody)
            .env("GOBIN", "/opt/go-bin")
            .output(OutputMode::Capture)
            .run()
            .await
            .expect("runs as nobody");
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "65534", "{text}");
        assert_eq!(lines[1], "65534", "{text}");
        assert_eq!(lines[2], "65534 100", "root's groups are gone: {text}");
        assert_eq!(lines[3], home.path().display().to_string());
        assert_eq!(lines[4], format!("{} nobody nobody", home.path().display()));
        assert!(lines[5].starts_with(&format!("{}/.local/bin:", home.path().display())));
        assert!(lines[5].ends_with(":/usr/sbin:/sbin"), "{text}");
        // Set by the command itself: kept, before or after the switch. Ours: gone (the
        // test process may or may not have an XDG_CACHE_HOME; the child never does).
        assert_eq!(lines[6], "/root/.local/pipx unset /opt/go-bin", "{text}");
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
    async fn a_32_mb_line_without_newline_is_split_in_bounded_memory() {
        // Before: every chunk rescanned the whole buffer for the start of the pending line
        // (20 s for this one, hours for 400 MB). Now: each byte looked at once, the line
        // cut at MAX_LINE for the sink, the capture kept to its limit.
        let lines: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let seen = lines.clone();
        let out = Cmd::new("sh")
            .args([
                "-c",
                "head -c 33554432 /dev/zero | tr '\\0' x; printf '\\nend\\n'; printf 'bye' >&2",
            ])
            .output(OutputMode::Capture)
            .keep_at_most(1024 * 1024)
            .on_line(Arc::new(move |stream, line: &str| {
                seen.lock()
                    .expect("lock")
                    .push(format!("{stream:?} {}", line.len()));
                if line.len() < 100 {
                    seen.lock()
                        .expect("lock")
                        .push(format!("{stream:?}: {line}"));
                }
            }))
            .run()
            .await
            .expect("runs");
        assert!(out.success());
        assert_eq!(
            out.stdout.len(),
            1024 * 1024,
            "the capture keeps its tail only"
        );
        assert!(out.stdout.ends_with(b"xxx\nend\n"));
        assert_eq!(out.stderr, b"bye");
        let lines = lines.lock().expect("lock").clone();
        let cut = 33554432 - MAX_LINE;
        let long = format!(" ... [{cut} more bytes]");
        // The two streams are read by two tasks: the order within each is fixed, not
        // between them.
        let of = |stream: &str| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.starts_with(stream))
                .cloned()
                .collect()
        };
        assert_eq!(
            of("Stdout"),
            [
                format!("Stdout {}", MAX_LINE + long.len()),
                "Stdout 3".to_string(),
                "Stdout: end".to_string(),
            ]
        );
        assert_eq!(of("Stderr"), ["Stderr 3", "Stderr: bye"]);
    }

    #[test]
    fn lines_split_across_chunks_and_carriage_returns() {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in [
            &b"par"[..],
            b"tial\r\nnext\nesc\x1b[31m",
            b"red\n",
            b"::error::x",
        ] {
            splitter.feed(chunk, &mut |l| lines.push(l));
        }
        splitter.finish(&mut |l| lines.push(l));
        assert_eq!(
            lines,
            ["partial", "next", "esc\\x1b[31mred", "\\::error::x"]
        );
    }

    #[test]
    fn printable_escapes_controls_and_defuses_workflow_commands() {
        assert_eq!(printable("a\rb\x07c\x7f\u{9b}"), "a\\x0db\\x07c\\x7f\\x9b");
        assert_eq!(printable("\u{202e}txt"), "\\u{202e}txt");
        assert_eq!(printable("::add-mask::x"), "\\::add-mask::x");
        assert_eq!(printable("a ::b"), "a ::b");
        assert_eq!(printable(&printable("::x")), "\\::x", "idempotent");
        assert_eq!(printable_text("ok\n::warning::w\n"), "ok\n\\::warning::w\n");
    }

    #[test]
    fn urls_lose_their_userinfo() {
        for (text, want) in [
            ("https://user:pass@127.0.0.1/x", "https://***@127.0.0.1/x"),
            ("http://tok@127.0.0.1:8080", "http://***@127.0.0.1:8080"),
            ("https://127.0.0.1/a@b", "https://127.0.0.1/a@b"),
            ("git@127.0.0.1:x.git", "git@127.0.0.1:x.git"),
            (
                "get https://a:b@127.0.0.1/ and http://c@127.0.0.2/?q=d@e",
                "get https://***@127.0.0.1/ and http://***@127.0.0.2/?q=d@e",
            ),
            ("\"https://u:p@h\"", "\"https://***@h\""),
            ("no url", "no url"),
        ] {
            assert_eq!(redact_urls(text), want, "{text}");
        }
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
