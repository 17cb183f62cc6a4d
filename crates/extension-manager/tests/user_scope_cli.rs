//! Per-user installs with a real second user (issue 12, item 1): a `scope = "user"`
//! extension installed with `--user`, its commands run as that user, its files owned by
//! them, `status --user` and the system's `status` showing it, a re-install changing
//! nothing, `remove --user` leaving the home exactly as it was, and symlinks planted in the
//! home refused. Needs root (it runs `useradd -m` and `userdel -r`): skipped with a reason
//! otherwise, failed instead under `EM_E2E_REQUIRED=1` (CI).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Session, stderr, stdout};
use em_test_support::user::{TestUser, root_or_skip};

/// Every path under `dir` with its owner, mode and (for files) bytes, for before/after.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("meta");
            let bytes = if meta.is_file() {
                fs::read(&path).expect("read")
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                todo.push(path.clone());
            }
            out.insert(path, (meta.uid(), meta.gid(), meta.mode(), bytes));
        }
    }
    out
}

/// `extensions/NAME.toml` of a `scope = "user"` extension with `body`.
fn write(s: &Session, name: &str, body: &str) {
    s.write_extension(name, "1.0.0", &format!("scope = \"user\"\n{body}"));
}

/// [`Session::em_extensions`] as root without sudo (no `SUDO_USER`: the target user comes
/// from `--user` only).
fn run(s: &Session, args: &[&str]) -> std::process::Output {
    s.em_extensions()
        .env_remove("SUDO_USER")
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn ok(s: &Session, args: &[&str]) -> String {
    let out = run(s, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

const HOMETEST: &str = r#"
[extension.env]
HOMETEST_DIR = "$HOME/.hometest"

[[install]]
run = "id -u > \"$HOME/hometest-run\"; id -G >> \"$HOME/hometest-run\"; pwd >> \"$HOME/hometest-run\""

[[install]]
file = "{{home}}/.config/hometest/tool.conf"
content = "user = {{user}}\n"
mode = "0600"

[[install]]
block = "{{home}}/.bashrc"
content = "export HOMETEST=1"

[[validate]]
run = "test \"$(id -un)\" = \"$USER\" && command -v useradd"

[[remove]]
run = "rm -f \"$HOME/hometest-run\""
"#;

#[test]
fn a_user_extension_installs_as_its_user_and_removes_to_the_home_as_it_was() {
    if !root_or_skip() {
        return;
    }
    let user = TestUser::create();
    let s = Session::new(&[], "");
    write(&s, "hometest", HOMETEST);
    let before = listing(&user.home);
    assert!(
        before.contains_key(&user.home.join(".bashrc")),
        "useradd -m copies /etc/skel's .bashrc: {before:?}"
    );

    // As root without --user or SUDO_USER: refused, nothing changed.
    let out = run(&s, &["install", "hometest"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--user"), "{}", stderr(&out));
    assert_eq!(listing(&user.home), before);

    ok(&s, &["install", "--user", &user.name, "hometest"]);
    let ran = fs::read_to_string(user.home.join("hometest-run")).expect("the run step wrote");
    let mut lines = ran.lines();
    assert_eq!(lines.next(), Some(user.uid.to_string().as_str()), "{ran}");
    assert!(
        !lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .any(|g| g == "0"),
        "root's group is gone: {ran}"
    );
    assert_eq!(lines.next(), Some(user.home.to_str().expect("utf-8")));
    let owned = |p: &Path| {
        let m = fs::symlink_metadata(p).expect("exists");
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
    };
    let conf = user.home.join(".config/hometest/tool.conf");
    assert_eq!(
        fs::read_to_string(&conf).expect("file"),
        format!("user = {}\n", user.name)
    );
    assert_eq!(owned(&conf), (user.uid, user.gid, 0o600));
    assert_eq!(
        owned(&user.home.join(".config")),
        (user.uid, user.gid, 0o755)
    );
    assert_eq!(
        owned(&user.home.join(".config/hometest")),
        (user.uid, user.gid, 0o755)
    );
    assert_eq!(owned(&user.home.join("hometest-run")).0, user.uid);
    let bashrc = fs::read_to_string(user.home.join(".bashrc")).expect("bashrc");
    assert!(
        bashrc.contains("# BEGIN extension-manager hometest\nexport HOMETEST=1\n"),
        "{bashrc}"
    );
    assert_eq!(owned(&user.home.join(".bashrc")).0, user.uid);
    let profile = fs::read_to_string(user.home.join(".profile")).expect("profile");
    assert!(
        profile.contains("export HOMETEST_DIR=\"$HOME/.hometest\""),
        "the env goes to the user's profile: {profile}"
    );
    assert_eq!(owned(&user.home.join(".profile")).0, user.uid);
    assert!(
        !s.path().join("profile.d").exists(),
        "nothing in the system's profile.d"
    );

    // status: the user's own (checks run as the user, sbin on PATH), and the system's
    // listing marks it.
    let status = ok(&s, &["status", "--user", &user.name]);
    assert!(
        status.contains("hometest") && status.contains("checks pass"),
        "{status}"
    );
    let system = ok(&s, &["status"]);
    assert!(
        system.contains(&format!("hometest@{}", user.name)),
        "{system}"
    );

    // A re-install is a no-op: checks only, the file not rewritten.
    let ino = fs::metadata(&conf).expect("meta").ino();
    let installed = listing(&user.home);
    let again = run(&s, &["install", "--user", &user.name, "hometest"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already installed; checks pass"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::metadata(&conf).expect("meta").ino(), ino);
    assert_eq!(listing(&user.home), installed);

    ok(&s, &["remove", "--user", &user.name, "hometest"]);
    let after = listing(&user.home);
    for (path, was) in &before {
        assert_eq!(
            after.get(path),
            Some(was),
            "{} changed by install + remove",
            path.display()
        );
    }
    for path in after.keys() {
        assert!(
            before.contains_key(path),
            "{} is left by remove",
            path.display()
        );
    }
    let status = ok(&s, &["status", "--user", &user.name]);
    assert!(status.contains("Nothing is installed"), "{status}");
}

#[test]
fn symlinks_planted_in_the_home_are_never_written_through() {
    if !root_or_skip() {
        return;
    }
    let user = TestUser::create();
    let s = Session::new(&[], "");
    // Somewhere only root may write, that the user points links at.
    let victim_dir = s.path().join("root-only");
    fs::create_dir_all(&victim_dir).expect("dir");
    let victim = victim_dir.join("victim.conf");
    fs::write(&victim, "original\n").expect("victim");

    // A link at the file's own path.
    std::os::unix::fs::symlink(&victim, user.home.join("linked.conf")).expect("symlink");
    write(
        &s,
        "linkfile",
        "[[install]]\nfile = \"{{home}}/linked.conf\"\ncontent = \"owned\\n\"\n",
    );
    let out = run(&s, &["install", "--user", &user.name, "linkfile"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "original\n");

    // A link at a parent directory inside the home.
    std::os::unix::fs::symlink(&victim_dir, user.home.join(".toolconf")).expect("symlink");
    write(
        &s,
        "linkdir",
        "[[install]]\nfile = \"{{home}}/.toolconf/victim.conf\"\ncontent = \"owned\\n\"\nreplace = true\n\n[[install]]\nblock = \"{{home}}/.toolconf/new.sh\"\ncontent = \"x\"\n",
    );
    let out = run(&s, &["install", "--user", &user.name, "linkdir"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "original\n");
    assert!(!victim_dir.join("new.sh").exists());
}

#[test]
fn the_bundled_shell_config_installs_for_a_user_and_removes_cleanly() {
    if !root_or_skip() {
        return;
    }
    let user = TestUser::create();
    let s = Session::new(&[], "");
    let before = listing(&user.home);
    // Under sudo, the user who ran sudo is the target: no --user needed.
    let out = s
        .em()
        .env("SUDO_USER", &user.name)
        .args([
            "install",
            "shell-config",
            "--set",
            "shell-config.editor=nano",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let profile = fs::read_to_string(user.home.join(".profile")).expect("profile");
    assert!(profile.contains("export EDITOR=\"nano\""), "{profile}");
    assert_eq!(
        fs::metadata(user.home.join(".inputrc"))
            .expect("inputrc")
            .uid(),
        user.uid
    );
    let out = s
        .em()
        .env("SUDO_USER", &user.name)
        .args(["status", "shell-config"])
        .output()
        .expect("runs");
    assert!(
        stdout(&out).contains("checks pass"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = s
        .em()
        .args(["remove", "--user", &user.name, "shell-config"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        listing(&user.home),
        before,
        "remove leaves the home as it was"
    );
}

#[test]
fn remove_deletes_nothing_below_a_link_planted_since_the_install() {
    if !root_or_skip() {
        return;
    }
    let user = TestUser::create();
    let s = Session::new(&[], "");
    write(
        &s,
        "toolconf",
        "[[install]]\nfile = \"{{home}}/.toolconf/tool.conf\"\ncontent = \"ours\\n\"\n",
    );
    ok(&s, &["install", "--user", &user.name, "toolconf"]);
    // The user swaps the directory for a link to where only root may write, with a file
    // of the same name there.
    let victim_dir = s.path().join("root-only");
    fs::create_dir_all(&victim_dir).expect("dir");
    fs::write(victim_dir.join("tool.conf"), "root's\n").expect("victim");
    fs::remove_file(user.home.join(".toolconf/tool.conf")).expect("rm");
    fs::remove_dir(user.home.join(".toolconf")).expect("rmdir");
    std::os::unix::fs::symlink(&victim_dir, user.home.join(".toolconf")).expect("symlink");

    let out = run(&s, &["remove", "--user", &user.name, "toolconf"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(".toolconf is now a symlink"), "{err}");
    assert_eq!(
        fs::read_to_string(victim_dir.join("tool.conf")).expect("victim"),
        "root's\n",
        "root deleted through the user's link"
    );
    assert!(victim_dir.exists());

    // With the directory back, remove finishes the job.
    fs::remove_file(user.home.join(".toolconf")).expect("unlink");
    fs::create_dir(user.home.join(".toolconf")).expect("mkdir");
    ok(&s, &["remove", "--user", &user.name, "toolconf"]);
    assert!(!user.home.join(".toolconf").exists());
}

/// A system extension named in a `--user` run is refused by name (not reported as a
/// missing requirement of the user extensions), and nothing is installed.
#[test]
fn a_system_extension_named_in_a_user_run_is_refused_by_name() {
    if !root_or_skip() {
        return;
    }
    let user = TestUser::create();
    let s = Session::new(&[], "");
    let mut all = String::new();
    for command in ["plan", "install"] {
        let out = s
            .em()
            .env_remove("SUDO_USER")
            .args([command, "--user", &user.name, "python", "shell-config"])
            .output()
            .expect("runs");
        all.push_str(&format!(
            "$ extension-manager {command} --user [USER] python shell-config\n"
        ));
        all.push_str(&common::transcript(&s, &out).replace(&user.name, "[USER]"));
    }
    assert!(!s.path().join("state").join("state.json").exists());
    insta::assert_snapshot!(all);
}
