//! `file` and `block` install steps end to end (issue 12, items 2 and 3): what lands on
//! disk (bytes, modes), that a re-run changes nothing, and that `remove` undoes exactly
//! what the install did. Every path is inside the test's temp dir.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Session, stderr, stdout};

fn write(s: &Session, name: &str, version: &str, body: &str) {
    s.write_extension(name, version, body);
}

fn run(s: &Session, args: &[&str]) -> std::process::Output {
    s.em_extensions()
        .args(args)
        .output()
        .expect("extension-manager runs")
}

fn ok(s: &Session, args: &[&str]) -> String {
    let out = run(s, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

fn file_manifest(path: &Path, extra: &str) -> String {
    format!(
        "[extension.options.port]\ndefault = \"8080\"\n\n[[install]]\nfile = \"{}\"\ncontent = \"\"\"\nport = {{{{port}}}}\nquote = \"$(id)\" '; x\n\"\"\"\n{extra}",
        path.display()
    )
}

#[test]
fn a_file_is_written_with_its_mode_left_alone_on_a_rerun_and_removed_with_its_dirs() {
    let s = Session::new(&[], "");
    let path = s.path().join("etc/tool/conf.d/tool.conf");
    write(
        &s,
        "tool",
        "1.0.0",
        &file_manifest(&path, "mode = \"0600\"\n"),
    );
    ok(&s, &["install", "tool", "--set", "tool.port=9"]);
    // Content is data: the option filled in plainly, nothing shell-quoted.
    assert_eq!(
        fs::read_to_string(&path).expect("file"),
        "port = 9\nquote = \"$(id)\" '; x\n"
    );
    assert_eq!(mode(&path), 0o600);
    let before = fs::metadata(&path).expect("meta");
    ok(&s, &["install", "tool", "--set", "tool.port=9", "--force"]);
    let after = fs::metadata(&path).expect("meta");
    assert_eq!(
        before.ino(),
        after.ino(),
        "an unchanged file is not rewritten"
    );
    assert_eq!(before.mtime_nsec(), after.mtime_nsec());

    let plan = ok(&s, &["remove", "tool", "--dry-run"]);
    assert!(
        plan.contains(&format!("  delete {}\n", path.display())),
        "{plan}"
    );
    // The same plan as one JSON document under --output json (it was text once), and
    // nothing removed.
    let doc: serde_json::Value = serde_json::from_str(&ok(
        &s,
        &["--output", "json", "remove", "tool", "--dry-run"],
    ))
    .expect("remove --dry-run --output json prints JSON");
    let etc = s.path().join("etc");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["failed"], false);
    assert_eq!(doc["removed"], serde_json::json!([]));
    assert_eq!(doc["error"], serde_json::Value::Null);
    assert_eq!(
        doc["would_remove"],
        serde_json::json!([{
            "name": "tool",
            "actions": [
                format!("delete {}", path.display()),
                format!("delete {} (when empty)", etc.join("tool/conf.d").display()),
                format!("delete {} (when empty)", etc.join("tool").display()),
                format!("delete {} (when empty)", etc.display()),
            ],
        }])
    );
    assert!(path.exists(), "a dry run removes nothing");
    ok(&s, &["remove", "tool"]);
    assert!(!path.exists());
    // The directories the install created went too; the one that was there stays.
    assert!(!s.path().join("etc").exists());
}

#[test]
fn an_existing_file_is_refused_without_replace_and_restored_exactly_with_it() {
    let s = Session::new(&[], "");
    let path = s.path().join("tool.conf");
    fs::write(&path, "the user's own\nlines\n").expect("original");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
    write(&s, "tool", "1.0.0", &file_manifest(&path, ""));
    let out = run(&s, &["--output", "json", "install", "tool"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The whole message, as the report and the Ansible module show it: one space before
    // the hint (a lost line continuation once put 22 there).
    let message = format!(
        "{} exists and is not this extension's; nothing was written \
         (hint: add replace = true to the step to replace it; remove then puts the original back)",
        path.display()
    );
    assert!(
        stdout(&out).contains(&format!("\"message\":\"{message}\"")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        fs::read_to_string(&path).expect("test io"),
        "the user's own\nlines\n"
    );
    assert!(!s.path().join("state/backups").exists());
    ok(&s, &["remove", "tool"]);

    write(
        &s,
        "tool",
        "1.0.0",
        &file_manifest(&path, "replace = true\n"),
    );
    ok(&s, &["install", "tool"]);
    assert_eq!(
        fs::read_to_string(&path).expect("test io"),
        "port = 8080\nquote = \"$(id)\" '; x\n"
    );
    assert_eq!(mode(&path), 0o644);
    let plan = ok(&s, &["remove", "tool", "--dry-run"]);
    assert!(
        plan.contains(&format!(
            "  restore {} (the original, from ",
            path.display()
        )),
        "{plan}"
    );
    ok(&s, &["remove", "tool"]);
    assert_eq!(
        fs::read_to_string(&path).expect("test io"),
        "the user's own\nlines\n"
    );
    assert_eq!(mode(&path), 0o640);
    let backups: Vec<PathBuf> = fs::read_dir(s.path().join("state/backups/tool"))
        .map(|d| d.map(|e| e.expect("test io").path()).collect())
        .unwrap_or_default();
    assert!(
        backups.is_empty(),
        "the backup is gone after the restore: {backups:?}"
    );
}

#[test]
fn a_file_of_another_extension_is_refused_with_a_hint_naming_it() {
    let s = Session::new(&[], "");
    let path = s.path().join("shared.conf");
    write(&s, "first", "1.0.0", &file_manifest(&path, ""));
    write(
        &s,
        "second",
        "1.0.0",
        &file_manifest(&path, "replace = true\n"),
    );
    ok(&s, &["install", "first"]);
    let out = run(&s, &["--output", "json", "install", "second"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = format!(
        "{} belongs to the extension `first`; nothing was written \
         (hint: remove `first` first, or write another path)",
        path.display()
    );
    assert!(
        stdout(&out).contains(&format!("\"message\":\"{message}\"")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        fs::read_to_string(&path).expect("first's file"),
        "port = 8080\nquote = \"$(id)\" '; x\n"
    );
}

#[test]
fn an_unknown_owner_is_refused_before_anything_is_written() {
    let s = Session::new(&[], "");
    let path = s.path().join("dir/tool.conf");
    write(
        &s,
        "tool",
        "1.0.0",
        &file_manifest(&path, "owner = \"em-no-such-user\"\n"),
    );
    let out = run(&s, &["install", "tool"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("there is no user `em-no-such-user`"),
        "{}",
        stderr(&out)
    );
    assert!(!s.path().join("dir").exists());
}

#[test]
fn a_symlink_target_is_refused_and_nothing_is_written() {
    let s = Session::new(&[], "");
    let real = s.path().join("real");
    fs::write(&real, "real\n").expect("test io");
    let link = s.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("test io");
    for body in [
        file_manifest(&link, "replace = true\n"),
        format!(
            "[[install]]\nblock = \"{}\"\ncontent = \"x\"\n",
            link.display()
        ),
    ] {
        write(&s, "tool", "1.0.0", &body);
        let out = run(&s, &["install", "tool"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
        assert_eq!(fs::read_to_string(&real).expect("test io"), "real\n");
        assert!(
            fs::symlink_metadata(&link)
                .expect("test io")
                .file_type()
                .is_symlink()
        );
        ok(&s, &["remove", "tool"]);
    }
}

#[test]
fn a_block_is_appended_updated_in_place_and_removed_leaving_the_users_lines() {
    let s = Session::new(&[], "");
    let rc = s.path().join("bashrc");
    let user = "# user's rc\nalias ll='ls -l'\nexport EDITOR=vi"; // no final newline
    fs::write(&rc, user).expect("test io");
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).expect("test io");
    let block = |content: &str| {
        format!(
            "[[install]]\nblock = \"{}\"\ncontent = \"{content}\"\n\n[[install]]\nblock = \"{}\"\nid = \"path\"\ncontent = \"export PATH=/opt/tool/bin:$PATH\"\n",
            rc.display(),
            rc.display()
        )
    };
    write(&s, "tool", "1.0.0", &block("eval one"));
    ok(&s, &["install", "tool"]);
    let first = format!(
        "{user}\n# BEGIN extension-manager tool\neval one\n# END extension-manager tool\n\
         # BEGIN extension-manager tool path\nexport PATH=/opt/tool/bin:$PATH\n# END extension-manager tool path\n"
    );
    assert_eq!(fs::read_to_string(&rc).expect("test io"), first);
    assert_eq!(mode(&rc), 0o600, "the file keeps its mode");
    // The user adds a line after the blocks; a new version updates the first block in place.
    let mut text = first.clone();
    text.push_str("export LATER=1\n");
    fs::write(&rc, &text).expect("test io");
    write(&s, "tool", "1.1.0", &block("eval two"));
    ok(&s, &["install", "tool"]);
    assert_eq!(
        fs::read_to_string(&rc).expect("test io"),
        text.replace("eval one", "eval two")
    );
    // A re-run changes nothing.
    let before = fs::metadata(&rc).expect("test io");
    ok(&s, &["install", "tool", "--force"]);
    assert_eq!(before.ino(), fs::metadata(&rc).expect("test io").ino());

    let plan = ok(&s, &["remove", "tool", "--dry-run"]);
    assert!(
        plan.contains(&format!(
            "  take the block `# BEGIN extension-manager tool path` out of {}\n",
            rc.display()
        )),
        "{plan}"
    );
    ok(&s, &["remove", "tool"]);
    // The user's lines, byte for byte, including the one added in between.
    assert_eq!(
        fs::read_to_string(&rc).expect("test io"),
        format!("{user}\nexport LATER=1\n")
    );
    assert_eq!(mode(&rc), 0o600);
}

#[test]
fn a_block_in_a_file_it_created_takes_the_file_along() {
    let s = Session::new(&[], "");
    let rc = s.path().join("profile/tool.sh");
    write(
        &s,
        "tool",
        "1.0.0",
        &format!(
            "[[install]]\nblock = \"{}\"\ncontent = \"export A=1\\n\"\n",
            rc.display()
        ),
    );
    ok(&s, &["install", "tool"]);
    assert_eq!(
        fs::read_to_string(&rc).expect("test io"),
        "# BEGIN extension-manager tool\nexport A=1\n# END extension-manager tool\n"
    );
    ok(&s, &["remove", "tool"]);
    assert!(!rc.exists());
    assert!(!s.path().join("profile").exists());
}

#[test]
fn plan_and_info_show_the_file_and_block_steps() {
    let s = Session::new(&[], "");
    let path = s.path().join("tool.conf");
    let rc = s.path().join("bashrc");
    write(
        &s,
        "tool",
        "1.0.0",
        &format!(
            "{}\n[[install]]\nblock = \"{}\"\nid = \"init\"\ncontent = \"x\"\n",
            file_manifest(&path, "mode = \"0640\"\nreplace = true\n"),
            rc.display()
        ),
    );
    let plan = ok(&s, &["plan", "tool"]);
    let info = ok(&s, &["info", "tool"]);
    for text in [&plan, &info] {
        assert!(
            text.contains(&format!(
                "file {} (33 bytes, mode 0640, replaces an existing file, restored by remove)",
                path.display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("block {} (managed block `init`)", rc.display())),
            "{text}"
        );
    }
}

#[test]
fn check_rejects_a_bad_file_step_with_its_place_and_a_hint_and_install_writes_nothing() {
    let s = Session::new(&[], "");
    let conf = s.path().join("tool.conf");
    write(
        &s,
        "tool",
        "1.0.0",
        &format!(
            "[[install]]\nfile = \"{}\"\ncontent = \"x\"\nmode = \"0999\"\n",
            conf.display()
        ),
    );
    let manifest = s.path().join("extensions/tool.toml");
    let out = s
        .em()
        .arg("check")
        .arg(&manifest)
        .output()
        .expect("extension-manager runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: `0999` is not an octal file mode\n --> {}:10:8\n",
            manifest.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("10 | mode = \"0999\"\n   |        ^^^^^^\n"),
        "{err}"
    );
    assert!(
        err.contains("= hint: write the mode as an octal string"),
        "{err}"
    );
    let out = run(&s, &["install", "tool"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!conf.exists());
}
