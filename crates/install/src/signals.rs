//! The termination signals: caught from start-up on, answered by stopping the work.
//!
//! [`Signals::install`] installs handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM,
//! SIGUSR1 and SIGUSR2 (every signal whose default action would kill us mid-install and
//! that a user, a terminal, a supervisor or `timeout(1)` plausibly sends) before any
//! command is dispatched, and watches them on a thread of its own. The watcher does not
//! depend on the main runtime being free: it marks the signal for synchronous waits
//! ([`received`]) and wakes the async side ([`Signals::first`]), which drops the running
//! work (and with it the children's process groups) and exits with 128 + the signal.
//! A second signal while that cleanup runs exits at once.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::task::Poll;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::exit;

/// The signals handled, with their names.
const HANDLED: [(SignalKind, &str); 7] = [
    (SignalKind::interrupt(), "SIGINT"),
    (SignalKind::terminate(), "SIGTERM"),
    (SignalKind::hangup(), "SIGHUP"),
    (SignalKind::quit(), "SIGQUIT"),
    (SignalKind::alarm(), "SIGALRM"),
    (SignalKind::user_defined1(), "SIGUSR1"),
    (SignalKind::user_defined2(), "SIGUSR2"),
];

/// The first signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The first termination signal received so far, for a synchronous wait that polls
/// (such as the run lock's) and has no future to be dropped.
pub fn received() -> Option<i32> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// The name of signal `signo` (`SIGINT`), or `signal N`.
pub fn name(signo: i32) -> String {
    HANDLED
        .iter()
        .find(|(kind, _)| kind.as_raw_value() == signo)
        .map_or_else(|| format!("signal {signo}"), |(_, name)| name.to_string())
}

/// What a signal did, in the user's words: `interrupted` (SIGINT), `stopped by SIGTERM`.
pub fn describe(signo: i32) -> String {
    if signo == SignalKind::interrupt().as_raw_value() {
        "interrupted".to_string()
    } else {
        format!("stopped by {}", name(signo))
    }
}

/// The exit code for signal `signo`: 128 + signo, as a shell reports it (130 for SIGINT).
pub fn exit_code(signo: i32) -> u8 {
    exit::from_child(128 + signo)
}

/// The installed handlers; [`Signals::first`] resolves on the first signal.
#[derive(Debug)]
pub struct Signals {
    first: watch::Receiver<i32>,
}

impl Signals {
    /// Installs the handlers and starts their watcher thread; returns once they are
    /// installed.
    ///
    /// Errors: the thread, its runtime or a handler could not be set up (the default
    /// actions then apply: the signal kills us, and em-exec's supervisor kills the groups).
    pub fn install() -> io::Result<Signals> {
        let (tx, first) = watch::channel(0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let handlers: io::Result<Vec<(i32, Signal)>> = HANDLED
                        .iter()
                        .map(|&(kind, _)| signal(kind).map(|s| (kind.as_raw_value(), s)))
                        .collect();
                    let mut handlers = match handlers {
                        Ok(handlers) => handlers,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let signo = next_signal(&mut handlers).await;
                    RECEIVED.store(signo, Ordering::SeqCst);
                    let _ = tx.send(signo);
                    // A second signal: the user does not want to wait for the cleanup.
                    let again = next_signal(&mut handlers).await;
                    std::process::exit(i32::from(exit_code(again)));
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the signal thread stopped"))??;
        Ok(Signals { first })
    }

    /// Resolves with the first signal received (at once if it came already).
    pub async fn first(&mut self) -> i32 {
        match self.first.wait_for(|s| *s != 0).await {
            Ok(signo) => *signo,
            // The watcher is gone (it could not start): no signal will be reported.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The number of the next signal received by any of `handlers`.
async fn next_signal(handlers: &mut [(i32, Signal)]) -> i32 {
    std::future::poll_fn(|cx| {
        for (signo, handler) in handlers.iter_mut() {
            if let Poll::Ready(Some(())) = handler.poll_recv(cx) {
                return Poll::Ready(*signo);
            }
        }
        Poll::Pending
    })
    .await
}
