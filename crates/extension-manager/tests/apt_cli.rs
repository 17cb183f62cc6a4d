//! `extension-manager apt ...` end to end against a fake apt-get/dpkg, as a user sees it.

mod common;

use common::{Session, stderr};

const APT_TOOLS: &[&str] = &["apt-get", "dpkg", "dpkg-query"];

/// An APT_CONFIG whose lists directory holds a fresh list file, so that "Unable to locate
/// package" is read as a real miss rather than stale lists.
fn fresh_lists(session: &Session) -> String {
    let lists = session.path().join("lists");
    std::fs::create_dir_all(lists.join("partial")).expect("lists");
    std::fs::write(lists.join("127.0.0.1_repo_._Packages"), "Package: x\n").expect("list");
    let conf = session.path().join("apt.conf");
    std::fs::write(
        &conf,
        format!("Dir::State::Lists \"{}/\";\n", lists.display()),
    )
    .expect("conf");
    conf.display().to_string()
}

#[test]
fn a_held_lock_is_retried_then_succeeds() {
    let s = Session::new(
        APT_TOOLS,
        r#"
[[call]]
tool = "apt-get"
match = "install"
times = 2
exit = 100
stderr = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
"#,
    );
    let out = s.run(&["apt", "install", "--delay", "1ms", "curl"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("apt install curl: attempt 1/4 failed (transient:"),
        "{err}"
    );
    assert!(err.contains("on attempt 3 after 2 retries"), "{err}");
    let installs: Vec<_> = s
        .calls()
        .into_iter()
        .filter(|(t, a)| t == "apt-get" && a.contains("install"))
        .collect();
    assert_eq!(installs.len(), 3);
    assert!(
        installs[0].1.contains("DPkg::Lock::Timeout="),
        "{:?}",
        installs[0]
    );
    assert!(installs[0].1.ends_with(" curl"), "{:?}", installs[0]);
    for env in s.call_envs() {
        assert_eq!(env["LC_ALL"], "C");
        assert_eq!(env["DEBIAN_FRONTEND"], "noninteractive");
    }
}

/// Under GitHub Actions each retry is a `::warning::` line, a give-up an `::error::`
/// line, and the step summary gets a table of what each source did.
#[test]
fn github_actions_get_annotations_and_a_step_summary() {
    let s = Session::new(
        APT_TOOLS,
        r#"
[[call]]
tool = "apt-get"
match = "install"
times = 1
exit = 100
stderr = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\n"
"#,
    );
    let summary = s.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").expect("summary");
    let out = s
        .em()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["apt", "install", "--delay", "1ms", "curl"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("::warning "))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("apt: install curl: attempt 1/4 failed (transient:"),
        "{err}"
    );
    assert!(!err.contains("::error "), "{err}");
    let text = std::fs::read_to_string(&summary).expect("summary");
    assert!(
        text.starts_with("earlier step\n### `extension-manager apt install"),
        "{text}"
    );
    // One operation against the machine's primary archive (its circuit key), retried once;
    // its circuit stays closed.
    assert!(text.contains("| 1 | 2 | 1 | 0 | 0 | closed |"), "{text}");
}

#[test]
fn an_interrupted_dpkg_is_repaired_once() {
    let s = Session::new(
        APT_TOOLS,
        r#"
[[call]]
tool = "apt-get"
match = "^.*install.* git$"
times = 1
exit = 100
stderr = "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem. \n"
"#,
    );
    let out = s.run(&["apt", "install", "--delay", "1ms", "git"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("repairing with dpkg --configure -a"), "{err}");
    let calls = s.calls();
    let configure = calls
        .iter()
        .position(|(t, a)| t == "dpkg" && a.contains("--configure -a"));
    let second_install = calls
        .iter()
        .rposition(|(t, a)| t == "apt-get" && a.ends_with(" git"));
    assert!(configure.is_some(), "{calls:?}");
    assert!(
        configure < second_install,
        "the repair runs before the second attempt: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|(t, a)| t == "dpkg" && a.contains("--configure"))
            .count(),
        1
    );
}

#[test]
fn an_unknown_package_fails_once_and_names_it() {
    let s = Session::new(
        APT_TOOLS,
        r#"
[[call]]
tool = "apt-get"
match = "install"
exit = 100
stderr = "E: Unable to locate package em-nope\n"
"#,
    );
    let conf = fresh_lists(&s);
    let out = s
        .em()
        .env("APT_CONFIG", &conf)
        .args(["apt", "install", "--delay", "1ms", "em-nope"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("em-nope"), "{err}");
    assert_eq!(
        s.calls().iter().filter(|(t, _)| t == "apt-get").count(),
        1,
        "{:?}",
        s.calls()
    );
}

#[test]
fn exhausted_update_exits_75() {
    let s = Session::new(
        APT_TOOLS,
        r#"
[[call]]
tool = "apt-get"
match = "update"
exit = 100
stderr = "Err:1 http://127.0.0.1:9/debian bookworm InRelease\n  503  Service Unavailable [IP: 127.0.0.1 9]\nE: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  503  Service Unavailable [IP: 127.0.0.1 9]\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n"
"#,
    );
    let out = s.run(&["apt", "update", "--attempts", "3", "--delay", "1ms"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("attempt 3/3 failed (transient"), "{err}");
    assert!(err.contains("try again later"), "{err}");
    let updates: Vec<_> = s
        .calls()
        .into_iter()
        .filter(|(t, a)| t == "apt-get" && a.contains("update"))
        .collect();
    assert_eq!(updates.len(), 3);
    assert!(
        updates.iter().all(|(_, a)| a.contains("--error-on=any")),
        "{updates:?}"
    );
}

#[test]
fn option_injection_is_refused_before_anything_runs() {
    let s = Session::new(APT_TOOLS, "");
    for bad in ["foo;rm", "Foo", "a b"] {
        let out = s.run(&["apt", "install", "--", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("invalid package `{bad}`")),
            "{}",
            stderr(&out)
        );
    }
    let out = s.run(&["apt", "install", "--", "-oAPT::Get::AllowUnauthenticated=1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(s.calls().is_empty(), "nothing ran: {:?}", s.calls());
}

/// `bash -c script` in the session's environment, with the fake tools and then the
/// extension-manager binary first on PATH (what `shell-init`'s functions call), and `var`.
fn bash(s: &Session, script: &str, var: (&str, std::path::PathBuf)) -> std::process::Output {
    let em_dir = std::path::Path::new(env!("CARGO_BIN_EXE_extension-manager"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = format!(
        "{}:{}:{}",
        s.path().join("bin").display(),
        em_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("bash")
        .args(["-c", script])
        .envs(
            s.em()
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("PATH", path)
        .env(var.0, var.1)
        .output()
        .expect("bash")
}

#[test]
fn shell_init_functions_drive_the_binary() {
    let s = Session::new(
        &[
            "apt-get",
            "dpkg",
            "dpkg-query",
            "npm",
            "python3",
            "curl",
            "wget",
        ],
        r#"
[[call]]
tool = "apt-get"
match = "install"
times = 1
exit = 100
stderr = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1 (apt-get)\n"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "via curl\n"

[[call]]
tool = "wget"
write_to_arg = "-O"
content = "via wget\n"
"#,
    );
    let script = r#"
set -e
eval "$(extension-manager shell-init bash)"
for f in apt_update_retry apt_install_retry npm_install_retry pip_install_retry wget_retry curl_retry retry_with_backoff; do
  type "$f" >/dev/null
done
apt_install_retry 3 curl git
apt_update_retry 2
npm_install_retry 2 typescript@5
pip_install_retry 2 black==24.1.0
curl_retry 2 https://127.0.0.1:9/file
wget_retry 2 https://127.0.0.1:9/file "$MARK.wget"
cat "$MARK.wget"
retry_with_backoff 3 0 1 sh -c 'test -e "$1" || { touch "$1"; exit 1; }' _ "$MARK"
set +e
retry_with_backoff 2 0 0 sh -c 'exit 9'
echo "rc=$?"
apt_install_retry 3
echo "usage=$?"
"#;
    let out = bash(&s, script, ("MARK", s.path().join("mark")));
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{err}\n{stdout}");
    assert!(
        err.contains("apt install curl git: attempt 1/3 failed (transient"),
        "{err}"
    );
    assert!(stdout.contains("rc=9"), "{stdout}");
    assert!(stdout.contains("via curl\nvia wget\n"), "{stdout}");
    let calls = s.calls();
    for tool in ["npm", "python3", "curl", "wget"] {
        assert!(
            calls.iter().any(|(t, _)| t == tool),
            "{tool} not called: {calls:?}"
        );
    }
    assert!(stdout.contains("usage=2"), "{stdout}");
    assert!(
        err.contains("usage: apt_install_retry MAX_ATTEMPTS PKG..."),
        "{err}"
    );
}

/// The helpers as real scripts call them (issue 12, "The shell migration path"): tool
/// flags from a known-safe list, a package list in one string, wget's and curl's own
/// argument forms, the eval'd-string form of retry_with_backoff, functions exported to
/// `bash -c` children, http:// only with EM_ALLOW_HTTP=1, and the old 0/1 exit codes.
#[test]
fn shell_helpers_take_the_arguments_real_scripts_give_them() {
    let s = Session::new(
        &[
            "apt-get",
            "dpkg",
            "dpkg-query",
            "npm",
            "python3",
            "curl",
            "wget",
        ],
        r#"
[[call]]
tool = "curl"
match = "127.0.0.1:7/"
exit = 7
stderr = "curl: (7) Failed to connect to 127.0.0.1 port 7: Connection refused\n"

[[call]]
tool = "curl"
write_to_arg = "-o"
content = "via curl\n"

[[call]]
tool = "wget"
write_to_arg = "-O"
content = "via wget\n"
"#,
    );
    let work = s.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let script = r#"
eval "$(extension-manager shell-init bash)"
cd "$WORK"
apt_install_retry 3 -y --no-install-recommends "em-tree em-jq"; echo "apt=$?"
npm_install_retry 2 -g typescript@5; echo "npm-g=$?"
npm_install_retry 2 left-pad; echo "npm-local=$?"
pip_install_retry 2 --user -q black==24.1.0; echo "pip-user=$?"
wget_retry 2 https://127.0.0.1:9/dir/tool.tar.gz -O named.wget; echo "wget-O=$?"
wget_retry 2 https://127.0.0.1:9/dir/tool.tar.gz?x=1; echo "wget-cwd=$?"
curl_retry 2 -fsSL https://127.0.0.1:9/script.sh -o named.curl; echo "curl-o=$?"
curl_retry 2 -fsSL https://127.0.0.1:9/script.sh | head -1
apt_install_retry 3 --force-yes em-x; echo "refused=$?"
curl_retry 2 -k https://127.0.0.1:9/x; echo "insecure=$?"
wget_retry 2 http://127.0.0.1:9/plain; echo "http=$?"
EM_ALLOW_HTTP=1 wget_retry 2 http://127.0.0.1:9/plain.txt; echo "http-allowed=$?"
retry_with_backoff 3 0 "test -e \"$WORK/once\" || { touch \"$WORK/once\"; exit 1; }"; echo "string-form=$?"
bash -c 'apt_install_retry 2 em-child'; echo "child=$?"
curl_retry 1 https://127.0.0.1:7/down -o down; echo "compat=$?"
EM_SHELL_EXIT_CODES=full curl_retry 1 https://127.0.0.1:7/down -o down; echo "full=$?"
ls
"#;
    let out = bash(&s, script, ("WORK", work.clone()));
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "apt=0",
        "npm-g=0",
        "npm-local=0",
        "pip-user=0",
        "wget-O=0",
        "wget-cwd=0",
        "curl-o=0",
        "via curl",
        "refused=2",
        "insecure=2",
        "http=2",
        "http-allowed=0",
        "string-form=0",
        "child=0",
        "compat=1",
        "full=75",
        "named.curl",
        "named.wget",
        "plain.txt",
        "tool.tar.gz",
    ] {
        assert!(
            stdout.lines().any(|l| l == want),
            "{want} missing:\n{stdout}\n{err}"
        );
    }
    assert!(
        err.contains("apt_install_retry: --force-yes is not supported here"),
        "{err}"
    );
    assert!(err.contains("set EM_ALLOW_HTTP=1"), "{err}");
    let calls = s.calls();
    let has =
        |tool: &str, pred: &dyn Fn(&str) -> bool| calls.iter().any(|(t, a)| t == tool && pred(a));
    assert!(
        has("apt-get", &|a| a.starts_with("install")
            && a.ends_with("em-tree em-jq")),
        "{calls:?}"
    );
    assert!(has("apt-get", &|a| a.ends_with("em-child")), "{calls:?}");
    assert!(has("npm", &|a| a.starts_with("install -g")
        && a.contains("typescript@5")));
    assert!(has("npm", &|a| a.starts_with("install ")
        && !a.contains(" -g")
        && a.contains("left-pad")));
    assert!(
        has("python3", &|a| a.contains("install")
            && a.contains("--user")),
        "{calls:?}"
    );
    assert!(
        !has("apt-get", &|a| a.contains("em-x")),
        "a refused call ran: {calls:?}"
    );
}
