//! The `pipx`, `cargo`, `gem` and `go` install steps, and their undo: em-lang's adapters
//! under the run's policies, with exact records of what each step added.
//!
//! Like an npm step: what the tool's own list (`pipx list --json`, `cargo install
//! --list`, `gem list`, the files in GOBIN) does not show before the step is recorded as
//! added *before* the tool runs (a run killed midway still knows what to undo), and what
//! is still missing after a failure is forgotten again. `remove` uninstalls only those,
//! and keeps any that another installed extension also added or uses.
//!
//! A child module of `executor`, so that it uses the executor's step plumbing
//! (`runner_for`, `recorded`, the log) without widening its visibility; the CLI's
//! `remove` calls [`uninstall`] and [`undo_lines`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use em_exec::Runner;
use em_lang::{Lang, LangConfig, LangPackage, LangTool};
use em_manifest::{InstallStep, LangStep};
use tokio::sync::Mutex as AsyncMutex;

use super::{
    Context, Log, StepError, StepRecorder, keep_listed, parse_each, push_new, recorded, runner_for,
    unknown_state,
};
use crate::adapter_context::PolicyName;
use crate::state::{Added, InstalledExtension, LangAdded};

/// One install at a time per tool, host-wide for the run: pipx shares one venv of
/// libraries between its apps, cargo and go one registry cache and build lock, gem one
/// gem directory; two installs of one tool at once would wait on each other (or worse).
static ONE_PER_TOOL: LazyLock<[AsyncMutex<()>; 4]> = LazyLock::new(Default::default);

fn lock_of(tool: LangTool) -> &'static AsyncMutex<()> {
    let i = LangTool::ALL
        .iter()
        .position(|t| *t == tool)
        .expect("ALL lists every tool");
    &ONE_PER_TOOL[i]
}

/// Where root's pipx puts apps unless `PIPX_HOME` says otherwise: what `pipx install
/// --global` does from pipx 1.5 on (Debian 12 ships 1.1, without it), so that an app is
/// on every user's PATH rather than in /root/.local/bin.
pub(crate) const PIPX_ROOT_ENV: [(&str, &str); 3] = [
    ("PIPX_HOME", "/opt/pipx"),
    ("PIPX_BIN_DIR", "/usr/local/bin"),
    ("PIPX_MAN_DIR", "/usr/local/share/man"),
];

/// The adapter's configuration: pipx's pip uses the run's pip index; root's pipx installs
/// system-wide ([`PIPX_ROOT_ENV`]). The same for install and remove, so that `pipx
/// uninstall` looks where `pipx install` put the app.
fn config(
    tool: LangTool,
    pip_index: Option<&str>,
    user: Option<&em_manifest::TargetUser>,
) -> LangConfig {
    let mut env = Vec::new();
    // A user extension's tools run as its user, into that user's home (pipx's own
    // per-user default, ~/.cargo, ~/.local/share/gem, ~/go).
    let run_as = user
        .filter(|_| em_exec::is_root())
        .map(crate::user::Account::run_as_target);
    if tool == LangTool::Pipx
        && user.is_none()
        && em_exec::is_root()
        && std::env::var_os("PIPX_HOME").is_none()
    {
        env.extend(PIPX_ROOT_ENV.map(|(k, v)| (k.to_string(), v.to_string())));
    }
    LangConfig {
        index_url: (tool == LangTool::Pipx)
            .then(|| pip_index.map(str::to_string))
            .flatten(),
        env,
        run_as,
    }
}

/// The directories a pipx install may create that are missing now, asked before pipx
/// runs (every pipx command creates its home): the chains down to pipx's possible homes
/// and bin dir. For a user: pipx 1.1's `~/.local/pipx`, later versions' `~/.local/share/pipx`
/// and `~/.local/bin`, up to (not including) the home. For root: our `PIPX_HOME` and
/// `PIPX_BIN_DIR`, else [`PIPX_ROOT_ENV`]'s. Which of them pipx really uses is asked
/// afterwards ([`created_by_pipx`]).
fn missing_pipx_dirs(user: Option<&em_manifest::TargetUser>) -> BTreeSet<PathBuf> {
    let ours = |key: &str, root_default: &str| {
        std::env::var_os(key)
            .map(PathBuf::from)
            .or_else(|| em_exec::is_root().then(|| PathBuf::from(root_default)))
    };
    let (top, candidates) = match user {
        Some(u) => {
            let home = PathBuf::from(&u.home);
            let candidates = [".local/pipx", ".local/share/pipx", ".local/bin"]
                .map(|c| home.join(c))
                .to_vec();
            (home, candidates)
        }
        None => (
            PathBuf::from("/"),
            [
                ours("PIPX_HOME", PIPX_ROOT_ENV[0].1),
                ours("PIPX_BIN_DIR", PIPX_ROOT_ENV[1].1),
            ]
            .into_iter()
            .flatten()
            .filter(|p| p.is_absolute())
            .collect(),
        ),
    };
    candidates
        .iter()
        .flat_map(|c| {
            c.ancestors()
                .take_while(|a| *a != top && a.starts_with(&top))
        })
        .filter(|a| !a.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Of the directories that were `missing`, those on the way to the home and bin dir pipx
/// says it uses ([`em_lang::Lang::pipx_dirs`]), deepest first: the order in which
/// `remove` can delete them when empty.
async fn created_by_pipx(adapter: &Lang, missing: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    if missing.is_empty() {
        return Vec::new();
    }
    let Ok((home, bin)) = adapter.pipx_dirs().await else {
        return Vec::new();
    };
    let mut created: Vec<PathBuf> = [home, bin]
        .iter()
        .flat_map(|d| d.ancestors())
        .filter(|a| missing.contains(*a))
        .map(Path::to_path_buf)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    created.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    created
}

/// What pipx keeps in its home besides the apps' venvs: the shared pip/setuptools venv,
/// its caches, logs and trash (pipx 1.1 to 1.7 layouts). Deleted with the home when the
/// install that created the home takes out the last app.
const PIPX_INTERNALS: [&str; 6] = ["shared", ".cache", "logs", "py", "trash", "venvs"];

/// Runs one `pipx`/`cargo`/`gem`/`go` step of `name`'s install.
#[allow(clippy::too_many_arguments)]
pub(super) async fn install(
    ctx: &Arc<Context>,
    name: &str,
    step: &InstallStep,
    lang: &LangStep,
    log: &Log,
    recorder: Arc<StepRecorder>,
    record: &mut InstalledExtension,
    index: usize,
    user: Option<&em_manifest::TargetUser>,
) -> Result<(), StepError> {
    let tool = lang.tool;
    let packages = parse_each(&lang.packages, |p| LangPackage::parse(tool, p))?;
    let runner = runner_for(
        ctx,
        ctx.settings.policy(PolicyName::Lang),
        step,
        log,
        recorder,
    )?;
    let adapter = Arc::new(Lang::new(
        tool,
        config(tool, ctx.settings.pip_index.as_deref(), user),
    )?);
    let _one_at_a_time = lock_of(tool).lock().await;
    let entry = |p: &LangPackage| LangAdded {
        tool: tool.key().to_string(),
        name: p.name().to_string(),
    };
    // Asked before `pipx list` below, which creates the home (its logs and venvs) itself:
    // found by the fresh-rootfs test, where /opt/pipx stayed after remove, and by the e2e
    // test of a real second user, where ~/.local/pipx, ~/.local/bin and ~/.local stayed.
    let created_dirs = match tool {
        LangTool::Pipx => created_by_pipx(&adapter, &missing_pipx_dirs(user)).await,
        _ => Vec::new(),
    };
    let fresh: Vec<LangAdded> = match adapter.installed().await {
        Ok(before) => packages
            .iter()
            .filter(|p| !before.contains(p.name()))
            .map(entry)
            .collect(),
        Err(e) => {
            unknown_state(
                ctx,
                log,
                &format!("{tool}'s installed packages are unknown ({e})"),
            );
            Vec::new()
        }
    };
    for p in &packages {
        push_new(&mut record.uses.lang, entry(p));
    }
    for a in &fresh {
        push_new(&mut record.added.lang, a.clone());
    }
    // pipx creates its home (and bin dir) on the first install and keeps them (with its
    // shared venv) when the last app goes: the install that created them records them,
    // for `remove`.
    for dir in created_dirs {
        push_new(&mut record.added.dirs, dir);
    }
    recorded(
        ctx,
        name,
        record,
        index,
        adapter.install(&runner, &packages),
        async |added, _| {
            let now = adapter.installed().await;
            keep_listed(&mut added.lang, &fresh, now, |now, a| now.contains(&a.name))
        },
    )
    .await?;
    Ok(())
}

/// What `tool` lists as installed, with versions (see `em_lang::Lang::installed_versions`),
/// for the system or for `user`, with the environment install gives it (root's pipx home;
/// no index: listing asks none).
pub async fn installed_versions(
    tool: LangTool,
    user: Option<&em_manifest::TargetUser>,
) -> Result<std::collections::BTreeMap<String, Option<String>>, String> {
    let adapter = Lang::new(tool, self::config(tool, None, user)).map_err(|e| e.to_string())?;
    adapter
        .installed_versions()
        .await
        .map_err(|e| e.to_string())
}

/// Uninstalls the language packages of one undo group, tool by tool; the problems, if any.
pub async fn uninstall(
    config: &crate::config::Config,
    group: &Added,
    runner: &Runner,
    user: Option<&em_manifest::TargetUser>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for tool in LangTool::ALL {
        let names: Vec<String> = group
            .lang
            .iter()
            .filter(|a| a.tool == tool.key())
            .map(|a| a.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if names.is_empty() {
            continue;
        }
        let result = match Lang::new(tool, self::config(tool, None, user)) {
            Ok(adapter) => {
                let policy = config.policy(PolicyName::Lang);
                Arc::new(adapter)
                    .uninstall(&runner.clone().with_policy(policy), &names)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            problems.push(e.to_string());
        } else if tool == LangTool::Pipx {
            problems.extend(empty_pipx_home(group, user).await);
        }
    }
    problems
}

/// When this group created pipx's home ([`Added::dirs`]) and no app is left in it: pipx's
/// own internals go, so that `remove`'s "delete when empty" takes the home too.
async fn empty_pipx_home(group: &Added, user: Option<&em_manifest::TargetUser>) -> Option<String> {
    if group.dirs.is_empty() {
        return None;
    }
    let pipx = Lang::new(LangTool::Pipx, config(LangTool::Pipx, None, user)).ok()?;
    let (home, _) = pipx.pipx_dirs().await.ok()?;
    if !group.dirs.contains(&home) || !pipx.installed().await.ok()?.is_empty() {
        return None;
    }
    for internal in PIPX_INTERNALS {
        let path = home.join(internal);
        if let Err(e) = crate::executor::remove_path(&path) {
            return Some(format!("cannot delete {}: {e}", path.display()));
        }
    }
    None
}

/// What `remove --dry-run` prints for the language packages of one undo group.
pub fn undo_lines(group: &Added) -> Vec<String> {
    group
        .lang
        .iter()
        .map(|a| match a.tool.as_str() {
            "go" => format!("delete {} from go's GOBIN", a.name),
            "gem" => format!("gem uninstall -a -x -I {}", a.name),
            tool => format!("{tool} uninstall {}", a.name),
        })
        .collect()
}
