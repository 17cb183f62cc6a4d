//! `remove` undoes exactly what `install` added (issue 10, "Exact undo"), end to end
//! against fake tools whose dpkg database gains the dependencies an install pulls in.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Session, stderr, stdout};

const APT: &[&str] = &["apt-get", "dpkg", "dpkg-query"];

/// perl was there before; em-python3 pulls in em-python3.11 (which pulls in em-libpython)
/// and perl; em-gcc and em-tool share em-libshared.
const DPKG: &str = r#"
[dpkg]
installed = ["perl"]
depends = { em-python3 = ["em-python3.11", "perl"], "em-python3.11" = ["em-libpython"], em-gcc = ["em-libshared"], em-tool = ["em-libshared"] }
"#;

fn write(s: &Session, name: &str, body: &str) {
    let dir = s.path().join("extensions");
    fs::create_dir_all(&dir).expect("dir");
    let text = format!(
        "[extension]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test {name}\"\ncategory = \"test\"\n\n{body}"
    );
    fs::write(dir.join(format!("{name}.toml")), text).expect("manifest");
}

fn run(s: &Session, args: &[&str]) -> std::process::Output {
    s.em()
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .env("EM_APT_BATCH_WINDOW", "300ms")
        .arg("--extensions-dir")
        .arg(s.path().join("extensions"))
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn ok(s: &Session, args: &[&str]) -> String {
    let out = run(s, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    err
}

fn state(s: &Session) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(s.path().join("state/state.json")).expect("state"))
        .expect("json")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The packages of the fake dpkg database.
fn dpkg_packages(s: &Session) -> Vec<String> {
    let db: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(s.path().join("fake-state/dpkg.json")).expect("dpkg.json"),
    )
    .expect("json");
    let mut all = strings(&db["manual"]);
    all.extend(strings(&db["auto"]));
    all.sort();
    all
}

fn calls_of(s: &Session, tool: &str) -> Vec<String> {
    s.calls()
        .into_iter()
        .filter(|(t, _)| t == tool)
        .map(|(_, a)| a)
        .collect()
}

#[test]
fn remove_purges_what_the_install_pulled_in_and_nothing_else() {
    let s = Session::new(APT, DPKG);
    write(
        &s,
        "python",
        "[[install]]\napt = [\"em-python3\", \"em-gcc\"]\n",
    );
    write(&s, "tool", "[[install]]\napt = [\"em-tool\"]\n");
    // One merged apt-get run: both record em-libshared, pulled in for both.
    ok(&s, &["install", "python", "tool"]);
    let st = state(&s);
    let python = &st["extensions"]["python"]["added"];
    assert_eq!(strings(&python["apt"]), ["em-python3", "em-gcc"], "{st:#}");
    assert_eq!(
        strings(&python["apt_deps"]),
        ["em-libpython", "em-libshared", "em-python3.11"],
        "perl was there before: {st:#}"
    );
    assert_eq!(
        strings(&st["extensions"]["tool"]["added"]["apt_deps"]),
        ["em-libpython", "em-libshared", "em-python3.11"],
        "a merged run's dependencies are every member's: {st:#}"
    );

    // tool also recorded em-python3.11 and em-libpython, so they stay with it ...
    ok(&s, &["remove", "python"]);
    let purges = calls_of(&s, "apt-get")
        .into_iter()
        .filter(|a| a.starts_with("purge"))
        .collect::<Vec<_>>();
    assert_eq!(purges.len(), 1, "{purges:?}");
    assert!(purges[0].ends_with(" em-python3 em-gcc"), "{purges:?}");
    assert_eq!(
        dpkg_packages(&s),
        [
            "em-libpython",
            "em-libshared",
            "em-python3.11",
            "em-tool",
            "perl"
        ]
    );
    // ... and go with it, as apt finds nothing needs them; perl stays.
    ok(&s, &["remove", "tool"]);
    assert_eq!(dpkg_packages(&s), ["perl"]);
    let purges = calls_of(&s, "apt-get")
        .into_iter()
        .filter(|a| a.starts_with("purge"))
        .collect::<Vec<_>>();
    assert!(purges[1].ends_with(" em-tool"), "{purges:?}");
    assert!(
        purges[2].ends_with(" em-libpython em-libshared em-python3.11"),
        "{purges:?}"
    );
    assert!(
        state(&s)["extensions"]
            .as_object()
            .is_some_and(|e| e.is_empty())
    );
}

#[test]
fn alone_an_install_records_only_its_own_dependencies_and_remove_takes_them() {
    let s = Session::new(APT, DPKG);
    write(&s, "python", "[[install]]\napt = [\"em-python3\"]\n");
    write(&s, "tool", "[[install]]\napt = [\"em-tool\"]\n");
    ok(&s, &["install", "tool"]);
    ok(&s, &["install", "python"]);
    let st = state(&s);
    assert_eq!(
        strings(&st["extensions"]["tool"]["added"]["apt_deps"]),
        ["em-libshared"]
    );
    ok(&s, &["remove", "python"]);
    assert_eq!(dpkg_packages(&s), ["em-libshared", "em-tool", "perl"]);
}

#[test]
fn a_failed_query_records_nothing_as_added() {
    let scenario = format!(
        r#"
[[call]]
tool = "dpkg-query"
exit = 2
stderr = "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 7: missing 'Package' field\n"

[[call]]
tool = "npm"
match = "^ls "
exit = 1
stderr = "npm ERR! code ELSPROBLEMS\n"
{DPKG}"#
    );
    let s = Session::new(&["apt-get", "dpkg", "dpkg-query", "npm"], &scenario);
    write(
        &s,
        "python",
        "[[install]]\napt = [\"em-python3\"]\n\n[[install]]\nnpm = [\"em-ts\"]\n",
    );
    let err = ok(&s, &["install", "python"]);
    assert!(err.contains("dpkg's status is unknown"), "{err}");
    assert!(err.contains("npm's global packages are unknown"), "{err}");
    let st = state(&s);
    let added = &st["extensions"]["python"]["added"];
    assert!(strings(&added["apt"]).is_empty(), "{st:#}");
    assert!(strings(&added["apt_deps"]).is_empty(), "{st:#}");
    assert!(strings(&added["npm"]).is_empty(), "{st:#}");
    assert_eq!(
        strings(&st["extensions"]["python"]["uses"]["apt"]),
        ["em-python3"]
    );
    ok(&s, &["remove", "python"]);
    assert!(
        calls_of(&s, "apt-get")
            .iter()
            .all(|a| !a.starts_with("purge")),
        "{:?}",
        s.calls()
    );
    assert!(
        calls_of(&s, "npm")
            .iter()
            .all(|a| !a.starts_with("uninstall"))
    );
}

#[test]
fn remove_undoes_the_steps_in_reverse_so_npm_goes_before_the_apt_npm() {
    let scenario = format!(
        "[[call]]\ntool = \"npm\"\nmatch = \"^ls \"\nstdout = '{{\"dependencies\": {{}}}}'\n{DPKG}"
    );
    let s = Session::new(&["apt-get", "dpkg", "dpkg-query", "npm"], &scenario);
    write(
        &s,
        "nodejs",
        "[[install]]\napt = [\"em-nodejs\", \"em-npm\"]\n\n[[install]]\nnpm = [\"em-ts\"]\n",
    );
    ok(&s, &["install", "nodejs"]);
    let dry = run(&s, &["remove", "--dry-run", "nodejs"]);
    let text = stdout(&dry);
    let npm_at = text.find("npm uninstall -g em-ts").expect(&text);
    let apt_at = text.find("apt purge em-nodejs").expect(&text);
    assert!(npm_at < apt_at, "{text}");

    ok(&s, &["remove", "nodejs"]);
    let calls = s.calls();
    let uninstall = calls
        .iter()
        .position(|(t, a)| t == "npm" && a.starts_with("uninstall"))
        .expect("npm uninstall ran");
    let purge = calls
        .iter()
        .position(|(t, a)| t == "apt-get" && a.starts_with("purge"))
        .expect("apt-get purge ran");
    assert!(uninstall < purge, "{calls:?}");
    assert!(state(&s)["extensions"].get("nodejs").is_none());
}

/// npm creates its global `node_modules` on the first global install and leaves it when
/// the last package goes: the install records it, `remove` deletes it when empty, and
/// keeps it when something else is in it.
#[test]
fn npms_global_root_goes_with_the_install_that_created_it_when_empty() {
    for leftover in [false, true] {
        let root = tempfile::tempdir().expect("tempdir");
        let modules = root.path().join("lib/node_modules");
        let package = modules.join("em-ts");
        let scenario = format!(
            "[[call]]\ntool = \"npm\"\nmatch = \"^ls \"\nstdout = '{{\"dependencies\": {{}}}}'\n\n\
             [[call]]\ntool = \"npm\"\nmatch = \"^root -g\"\nstdout = \"{}\\n\"\n\n\
             [[call]]\ntool = \"npm\"\nmatch = \"^install \"\ntouch = [\"{}\"]\n",
            modules.display(),
            package.display(),
        );
        let s = Session::new(&["npm"], &scenario);
        write(&s, "ts", "[[install]]\nnpm = [\"em-ts\"]\n");
        ok(&s, &["install", "ts"]);
        assert!(package.exists(), "the fake npm installed into node_modules");
        assert_eq!(
            strings(&state(&s)["extensions"]["ts"]["added"]["dirs"]),
            [modules.display().to_string()],
        );
        // The fake's uninstall leaves node_modules as npm does; what is in it decides.
        fs::remove_file(&package).expect("the package's file");
        if leftover {
            fs::write(modules.join("someone-elses"), "x").expect("another package");
        }
        ok(&s, &["remove", "ts"]);
        assert_eq!(modules.exists(), leftover, "kept only when not empty");
    }
}

#[test]
fn remove_steps_get_the_install_options() {
    let s = Session::new(&[], "");
    let marker = s.path().join("removed");
    write(
        &s,
        "opt",
        &format!(
            "[extension.options.version]\ndefault = \"1\"\n\n[[install]]\nrun = \"true\"\n\n[[remove]]\nrun = \"echo {{{{version}}}} $EM_OPT_VERSION > {}\"\n",
            marker.display()
        ),
    );
    ok(&s, &["install", "opt", "--set", "opt.version=22"]);
    ok(&s, &["remove", "opt"]);
    assert_eq!(fs::read_to_string(&marker).expect("marker"), "22 22\n");
}

/// A download unpacked into an existing directory: `tar -tf` lists `small1` and
/// `small2`; `tar -xf` creates `small1`, then fails (or is slow, to be killed).
fn unpack_session(extract: &str) -> (Session, std::path::PathBuf) {
    let scenario = format!(
        r#"
[[call]]
tool = "curl"
write_to_arg = "-o"
content = "not really a tarball"

[[call]]
tool = "tar"
match = "^-tf "
stdout = "small1\n./small2\n"
{extract}"#
    );
    let s = Session::new(&["curl", "tar"], &scenario);
    let dir = s.path().join("opt");
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("keep"), "the user's").expect("keep");
    let scenario = scenario.replace("DIR", &dir.display().to_string());
    fs::write(s.path().join("scenario.toml"), &scenario).expect("scenario");
    write(
        &s,
        "unpacker",
        &format!(
            "[[install]]\ndownload = \"https://127.0.0.1:9/t.tar.gz\"\nto = \"{}\"\nunpack_to = \"{}\"\n",
            s.path().join("t.tar.gz").display(),
            dir.display()
        ),
    );
    (s, dir)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_unpack_leaves_nothing_behind() {
    let (s, dir) = unpack_session(
        "[[call]]\ntool = \"tar\"\nmatch = \"^-xf \"\ntouch = [\"DIR/small1\"]\nexit = 2\nstderr = \"tar: Unexpected EOF in archive\\n\"\n",
    );
    let out = run(&s, &["install", "unpacker"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Unexpected EOF"), "{}", stderr(&out));
    assert_eq!(entries(&dir), ["keep"]);
    let st = state(&s);
    let files = strings(&st["extensions"]["unpacker"]["added"]["files"]);
    assert!(files.iter().all(|f| !f.contains("small")), "{st:#}");
}

#[test]
fn a_killed_unpack_is_undone_by_remove() {
    let (s, dir) = unpack_session(
        "[[call]]\ntool = \"tar\"\nmatch = \"^-xf \"\ntouch = [\"DIR/small1\"]\ndelay_ms = 400\n",
    );
    let mut child = s
        .em()
        .env("EM_PROFILE_DIR", s.path().join("profile.d"))
        .arg("--extensions-dir")
        .arg(s.path().join("extensions"))
        .args(["install", "unpacker"])
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !calls_of(&s, "tar").iter().any(|a| a.starts_with("-xf")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tar -xf never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    // tar dies with its parent (em-exec's supervisor); what it had written by then stays.
    std::fs::write(dir.join("small1"), "half").expect("a half-unpacked entry");
    let st = state(&s);
    let files = strings(&st["extensions"]["unpacker"]["added"]["files"]);
    assert!(
        files.iter().any(|f| f.ends_with("/opt/small1"))
            && files.iter().any(|f| f.ends_with("/opt/small2")),
        "recorded before tar ran: {st:#}"
    );
    ok(&s, &["remove", "unpacker"]);
    assert_eq!(entries(&dir), ["keep"]);
}

#[test]
fn bom_lists_the_dependencies_an_install_pulled_in() {
    let s = Session::new(APT, DPKG);
    write(&s, "python", "[[install]]\napt = [\"em-python3\"]\n");
    ok(&s, &["install", "python"]);
    let out = run(&s, &["bom"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let parts = doc["extensions"][0]["components"]
        .as_array()
        .expect("parts");
    let by_name = |n: &str| {
        parts
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {doc:#}"))
    };
    assert_eq!(by_name("em-python3")["dependency"], serde_json::Value::Null);
    for dep in ["em-python3.11", "em-libpython"] {
        assert_eq!(by_name(dep)["dependency"], true, "{doc:#}");
        assert_eq!(by_name(dep)["added"], true, "{doc:#}");
        assert_eq!(by_name(dep)["present"], true, "{doc:#}");
    }
    assert!(
        parts.iter().all(|p| p["name"] != "perl"),
        "perl was there before"
    );
}
