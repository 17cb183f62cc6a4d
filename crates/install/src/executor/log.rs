//! The extension's log file (every tool line, with the step headers) and the warnings a
//! step's last stderr lines become.

use super::*;

/// The log file of one extension: every tool line, and our own notes.
#[derive(Clone)]
pub(super) struct Log {
    pub(super) path: PathBuf,
    pub(super) file: Arc<Mutex<Option<std::fs::File>>>,
    /// The status printer and the task (extension) whose tool lines these are: for the
    /// live line and for noticing a wait for dpkg's lock.
    pub(super) task: Option<(Arc<dyn Events>, String)>,
    /// Whether the wait for dpkg's lock has been reported (once per log).
    pub(super) lock_noted: Arc<std::sync::atomic::AtomicBool>,
}

impl Log {
    pub(super) fn open(path: PathBuf) -> Log {
        use std::os::unix::fs::OpenOptionsExt;
        // 0600 and no symlink followed, as every file of the state directory.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok();
        Log {
            path,
            file: Arc::new(Mutex::new(file)),
            task: None,
            lock_noted: Arc::default(),
        }
    }

    /// This log, with the tool's lines also shown on task `name`'s live line (when `ui`
    /// has a live area), and a wait for dpkg's lock reported as a status line.
    pub(super) fn for_task(mut self, ui: &Arc<dyn Events>, name: &str) -> Log {
        self.task = Some((ui.clone(), name.to_string()));
        self
    }

    pub(super) fn line(&self, text: &str) {
        if let Ok(mut guard) = self.file.lock()
            && let Some(f) = guard.as_mut()
        {
            // Tool lines arrive printable (em-exec); ours may quote a URL with a password.
            let _ = writeln!(f, "{}", em_exec::redact_urls(text));
        }
    }

    pub(super) fn sink(&self) -> LineSink {
        let log = self.clone();
        Arc::new(move |stream: Stream, line: &str| {
            if let Some((ui, name)) = &log.task {
                // apt's machine-readable progress (asked for only with a live area).
                if let Some(progress) = em_apt::status_fd_line(line) {
                    ui.task_detail(name, &progress);
                    return;
                }
                ui.task_detail(name, line);
                if let Some(holder) = em_apt::lock_wait_line(line)
                    && !log
                        .lock_noted
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    ui.status("Waiting", Tone::Warn, &format!("{name}: {holder}"));
                }
            }
            let tag = if stream == Stream::Stderr { "! " } else { "  " };
            log.line(&format!("{tag}{line}"));
        })
    }
}

/// How many of a successful `run` step's stderr lines the console shows (the last ones);
/// the log has them all.
pub(super) const WARNING_LINES: usize = 5;

/// A successful `run` step's stderr, shown: a snippet that succeeds but says something on
/// stderr (a deprecation, a skipped part, "reboot required") is telling its user, and only
/// the log would have heard it. The last [`WARNING_LINES`] non-empty lines become `Warning`
/// status lines (escaped by the Ui, cut at [`em_exec::TAIL_LINE`] characters), then how
/// many more the log holds. A failure already quotes its tail in the error.
pub(super) fn show_warnings(ui: &dyn Events, name: &str, stderr: &str, log: &Path) {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let hidden = lines.len().saturating_sub(WARNING_LINES);
    for line in &lines[hidden..] {
        let line = match line.char_indices().nth(em_exec::TAIL_LINE) {
            Some((cut, _)) => format!("{} ...", &line[..cut]),
            None => line.to_string(),
        };
        ui.status("Warning", Tone::Warn, &format!("{name}: {line}"));
    }
    if hidden > 0 {
        ui.status(
            "Warning",
            Tone::Warn,
            &format!(
                "{name}: ({hidden} more line{} in the log: {})",
                if hidden == 1 { "" } else { "s" },
                log.display()
            ),
        );
    }
}
