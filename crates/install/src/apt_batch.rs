//! apt installs that wait together run as one `apt-get install` (SPEC 8).
//!
//! Only one apt/dpkg operation runs at a time on a machine, so while one extension's apt
//! step runs, the others' wait; each `apt-get install` then pays apt's fixed costs again
//! (reading the lists, resolving, dpkg's triggers). Here a step that wants apt joins a
//! queue, waits a short window (so that extensions starting together find each other),
//! then takes the apt lock; whoever gets the lock installs everything queued so far in one
//! run and tells each member how it went.
//!
//! - The merged run uses the first member's policy and status lines; every member's
//!   step report sees its attempts, failures and repairs, and every member's log gets
//!   apt's output.
//! - A merged run that fails permanently (an unknown package, a conflict) is retried per
//!   member, so that the failure lands on the extension that asked for it and the others
//!   install. A transient exhaustion (exit 75) is every member's: the archive is down for
//!   all of them.
//! - Before the merged run, `apt-get update` runs once when the lists are missing, stale
//!   or do not know a requested package ([`ensure_lists`]); if it fails, every member
//!   fails with its error.
//! - dpkg's status is read before and after each `apt-get install` ([`install_measured`]):
//!   what it pulled in besides the requested names is every member's, for `remove`.
//! - Steps with a third-party repository are not merged: their source must be added and
//!   updated first (the executor runs them alone, under the same lock).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use em_apt::{Apt, AptPackage};
use em_exec::{LineSink, Runner, Stream, ToolError, ToolErrorKind};
use em_retry::Subscriber;
use tokio::sync::{Mutex as AsyncMutex, oneshot};

use crate::events::{Events, Tone};

/// How long an apt step waits for others to join it, unless `EM_APT_BATCH_WINDOW` says
/// otherwise (a duration; tests set a long one to make merging certain).
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(50);

/// One extension's apt install, as it joins a batch.
pub struct Member {
    /// The extension.
    pub owner: String,
    /// Its packages.
    pub packages: Vec<AptPackage>,
    /// Its runner: policy, status lines, its step recorder, its log.
    pub runner: Runner,
    /// The runner of an `apt-get update` the batch needs first: the step's report shows it
    /// as an operation of its own.
    pub update: Runner,
    /// Its step recorder, given the merged run's events when another member leads.
    pub recorder: Arc<dyn Subscriber>,
    /// Its log, given the merged run's output lines.
    pub lines: LineSink,
}

struct Request {
    member: Member,
    done: oneshot::Sender<Installed>,
}

/// How an `apt-get install` went, and what it pulled in: the packages dpkg has after it
/// and did not have before, less the ones the run asked for (by name, any architecture).
/// In a merged run every member is told the same `pulled_in`: apt resolved their
/// packages together, and which member needed which dependency is not known.
pub struct Installed {
    /// The install's result.
    pub result: Result<(), ToolError>,
    /// What it pulled in; `Err` says why that is unknown (dpkg's status unreadable).
    pub pulled_in: Result<BTreeSet<String>, String>,
}

impl Installed {
    fn failed(e: ToolError) -> Installed {
        Installed {
            result: Err(e),
            pulled_in: Ok(BTreeSet::new()),
        }
    }
}

/// `apt-get install` of `packages`, with dpkg's status read before and after (one
/// `dpkg-query` call each): what the install pulled in, even when it failed midway.
pub async fn install_measured(
    apt: &Arc<Apt>,
    runner: &Runner,
    packages: &[AptPackage],
) -> Installed {
    let before = apt.inventory().await;
    let result = apt.install(runner, packages).await;
    let pulled_in = match (before, apt.inventory().await) {
        (Ok(before), Ok(after)) => Ok(after
            .added_since(&before)
            .into_iter()
            .filter(|p| !is_requested(p, packages))
            .collect()),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };
    Installed { result, pulled_in }
}

/// Whether dpkg's `package` (`libc6`, `libc6:i386`) is one of `packages` by name.
fn is_requested(package: &str, packages: &[AptPackage]) -> bool {
    let name = package.split_once(':').map_or(package, |(n, _)| n);
    packages.iter().any(|p| p.name() == name)
}

/// The queue of apt installs of one run.
pub struct AptBatcher {
    queue: Mutex<Vec<Request>>,
    window: Duration,
}

impl AptBatcher {
    /// A batcher whose members wait `window` for others.
    pub fn new(window: Duration) -> Self {
        AptBatcher {
            queue: Mutex::new(Vec::new()),
            window,
        }
    }

    /// [`DEFAULT_WINDOW`], or `EM_APT_BATCH_WINDOW` when it holds a duration.
    pub fn from_env() -> Self {
        let window = std::env::var("EM_APT_BATCH_WINDOW")
            .ok()
            .and_then(|v| em_retry::parse_duration(&v).ok())
            .unwrap_or(DEFAULT_WINDOW);
        AptBatcher::new(window)
    }

    /// Installs `member`'s packages, merged with whatever other installs are waiting;
    /// `lock` is the run's one-apt-operation-at-a-time lock.
    pub async fn install(
        &self,
        apt: &Arc<Apt>,
        lock: &AsyncMutex<()>,
        ui: &dyn Events,
        member: Member,
    ) -> Installed {
        let owner = member.owner.clone();
        let (done, result) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Request { member, done });
        tokio::time::sleep(self.window).await;
        {
            let _one_at_a_time = lock.lock().await;
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
            // Empty: another member took this request into its batch, already run.
            if !batch.is_empty() {
                let others: Vec<Arc<dyn Subscriber>> = batch[1..]
                    .iter()
                    .map(|r| r.member.recorder.clone())
                    .collect();
                let sinks: Vec<LineSink> = batch.iter().map(|r| r.member.lines.clone()).collect();
                // apt numbers the items of each run from 1: one count per run.
                let (in_update, in_install) = (Refetched::default(), Refetched::default());
                let update = batch[0]
                    .member
                    .update
                    .clone()
                    .subscribe_all(&others)
                    .with_lines(in_update.tee(sinks.clone()));
                let result = match ensure_lists(apt, ui, &update, &union(&batch)).await {
                    Ok(()) => {
                        run_batch(apt, ui, batch, in_install.tee(sinks)).await;
                        Ok(())
                    }
                    Err(e) => Err((e, batch)),
                };
                Refetched::report(ui, in_update.count() + in_install.count());
                if let Err((e, batch)) = result {
                    for r in batch {
                        let _ = r.done.send(Installed::failed(e.clone()));
                    }
                }
            }
        }
        result.await.unwrap_or_else(|_| {
            Installed::failed(ToolError::permanent(
                format!("apt install for {owner}"),
                "the merged apt install ended without a result",
                None,
            ))
        })
    }
}

/// Runs `apt-get update` first when `packages` need it (SPEC 8: the lists are missing,
/// older than `apt.update_max_age`, or do not know a package), at most once per run: a
/// planned step with its own retries, not the repair of a failed install.
pub async fn ensure_lists(
    apt: &Arc<Apt>,
    ui: &dyn Events,
    runner: &Runner,
    packages: &[AptPackage],
) -> Result<(), ToolError> {
    match apt.update_needed(packages).await {
        Some(why) => update_lists(apt, ui, runner, &why).await,
        None => Ok(()),
    }
}

/// `apt-get update`, announced with the reason it runs.
pub async fn update_lists(
    apt: &Arc<Apt>,
    ui: &dyn Events,
    runner: &Runner,
    why: &str,
) -> Result<(), ToolError> {
    ui.status(
        "Updating",
        Tone::Info,
        &format!("the apt package lists: {why}"),
    );
    apt.update(runner).await
}

/// The packages of every member, each once, in the order they were asked for.
fn union(batch: &[Request]) -> Vec<AptPackage> {
    let mut all: Vec<AptPackage> = Vec::new();
    for p in batch.iter().flat_map(|r| &r.member.packages) {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all
}

/// Counts the fetches apt retried itself (`Acquire::Retries`): apt prints `Ign:N URL` for
/// a failed fetch of item N, and a retried item then shows up again (`Ign:N`, `Get:N`,
/// `Hit:N`, `Err:N`). An `Ign:N` with nothing after it is a file apt did without (a flat
/// repository's missing `InRelease`), not a retry. These retries happen inside one attempt
/// of ours, so without this they would show nowhere but the log.
#[derive(Clone, Default)]
struct Refetched(Arc<Mutex<RefetchCount>>);

/// Per item: whether its last line was an `Ign:`; and the retries seen.
#[derive(Default)]
struct RefetchCount {
    ignored: std::collections::HashMap<String, bool>,
    retries: u32,
}

impl Refetched {
    /// A sink that reads apt's progress lines and passes every line on to `sinks`.
    fn tee(&self, sinks: Vec<LineSink>) -> LineSink {
        let seen = self.0.clone();
        Arc::new(move |stream: Stream, line: &str| {
            let item = ["Ign:", "Get:", "Hit:", "Err:"].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                Some((*prefix == "Ign:", rest.split_whitespace().next()?))
            });
            if let Some((ign, item)) = item {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                let was_ignored = seen.ignored.insert(item.to_string(), ign).unwrap_or(false);
                if was_ignored {
                    seen.retries += 1;
                }
            }
            for sink in &sinks {
                sink(stream, line);
            }
        })
    }

    /// The fetches apt retried.
    fn count(&self) -> u32 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retries
    }

    /// A status line when apt retried `n` fetches itself.
    fn report(ui: &dyn Events, n: u32) {
        if n > 0 {
            let what = if n == 1 { "fetch" } else { "fetches" };
            ui.status(
                "Refetched",
                Tone::Info,
                &format!(
                    "apt retried {n} failed {what} itself, inside the same apt-get run \
                     (Acquire::Retries; details in the logs)"
                ),
            );
        }
    }
}

async fn run_batch(apt: &Arc<Apt>, ui: &dyn Events, mut batch: Vec<Request>, lines: LineSink) {
    if batch.len() == 1 {
        let Some(request) = batch.pop() else { return };
        let runner = request.member.runner.clone().with_lines(lines);
        let installed = install_measured(apt, &runner, &request.member.packages).await;
        let _ = request.done.send(installed);
        return;
    }
    let mut owners: Vec<&str> = batch.iter().map(|r| r.member.owner.as_str()).collect();
    owners.sort_unstable();
    ui.status(
        "Merging",
        Tone::Info,
        &format!(
            "the apt installs of {} into one apt-get run",
            owners.join(", ")
        ),
    );
    let packages = union(&batch);
    let others: Vec<Arc<dyn Subscriber>> = batch[1..]
        .iter()
        .map(|r| r.member.recorder.clone())
        .collect();
    let runner = batch[0]
        .member
        .runner
        .clone()
        .subscribe_all(&others)
        .with_lines(lines);
    let merged = install_measured(apt, &runner, &packages).await;
    match merged.result {
        Ok(()) => {
            for r in batch {
                let pulled_in = merged.pulled_in.clone();
                let _ = r.done.send(Installed {
                    result: Ok(()),
                    pulled_in,
                });
            }
        }
        Err(e) if e.kind == ToolErrorKind::Permanent => {
            ui.status(
                "Splitting",
                Tone::Warn,
                &format!(
                    "the merged apt install failed ({}); installing each extension's packages \
                     alone, so that the failure lands on its owner",
                    e.reason
                ),
            );
            // What the merged attempt left installed is shared, as after a success.
            for r in batch {
                let mut alone = install_measured(apt, &r.member.runner, &r.member.packages).await;
                alone.pulled_in = join(&merged.pulled_in, alone.pulled_in);
                let _ = r.done.send(alone);
            }
        }
        Err(e) => {
            for r in batch {
                let _ = r.done.send(Installed {
                    result: Err(e.clone()),
                    pulled_in: merged.pulled_in.clone(),
                });
            }
        }
    }
}

/// Two answers of "what was pulled in": both sets, or why one is unknown.
fn join(
    a: &Result<BTreeSet<String>, String>,
    b: Result<BTreeSet<String>, String>,
) -> Result<BTreeSet<String>, String> {
    let mut all = a.clone()?;
    all.extend(b?);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(owner: &str, packages: &[&str]) -> Request {
        let (done, _) = oneshot::channel();
        Request {
            member: Member {
                owner: owner.into(),
                packages: packages
                    .iter()
                    .map(|p| AptPackage::parse(p).expect("a package"))
                    .collect(),
                runner: Runner::new(em_retry::RetryPolicy::new(1)),
                update: Runner::new(em_retry::RetryPolicy::new(1)),
                recorder: Arc::new(|_: &em_retry::Event| {}),
                lines: Arc::new(|_: Stream, _: &str| {}),
            },
            done,
        }
    }

    #[test]
    fn refetches_are_the_ign_lines_of_an_item_seen_again() {
        let refetched = Refetched::default();
        let passed = Arc::new(Mutex::new(0));
        let counter = passed.clone();
        let sink = refetched.tee(vec![Arc::new(move |_: Stream, _: &str| {
            *counter.lock().expect("lock") += 1;
        })]);
        for line in [
            "Ign:1 http://127.0.0.1:8080/repo ./ InRelease",
            "Get:2 http://127.0.0.1:8080/repo ./ Release [1234 B]",
            "Ign:3 http://127.0.0.1:8080/repo ./ em-fixture-hello 1.0",
            "Ign:3 http://127.0.0.1:8080/repo ./ em-fixture-hello 1.0",
            "Ign:3 http://127.0.0.1:8080/repo ./ em-fixture-hello 1.0",
            "Get:3 http://127.0.0.1:8080/repo ./ em-fixture-hello 1.0 [1 MB]",
        ] {
            sink(Stream::Stdout, line);
        }
        assert_eq!(
            refetched.count(),
            3,
            "item 3 failed three times and came at the fourth; item 1 was done without"
        );
        assert_eq!(
            *passed.lock().expect("lock"),
            6,
            "every line reaches the log"
        );
    }

    #[test]
    fn the_union_keeps_the_first_order_and_each_package_once() {
        let batch = [
            request("a", &["curl", "git"]),
            request("b", &["git", "make", "curl"]),
        ];
        let names: Vec<String> = union(&batch).iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["curl", "git", "make"]);
    }
}
