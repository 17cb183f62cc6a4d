//! Every captured apt-get and dpkg failure (`fixtures/outputs/apt-get/`, `.../dpkg/`)
//! classified by `em_apt::classify`, against the capture's `expect:` and `repair:`; then
//! the rows of SPEC section 4 and docs/failures.md that have no capture yet, with the messages
//! quoted from docs/failures.md.

use em_apt::{AptRepair, ClassifyContext, classify};
use em_exec::{ToolFailure, Verdict};
use em_test_support::{Capture, captures};

/// Every capture of `tool`, named `<tool>/<file>` as `STALE_LISTS` and `DECIDED` name them.
fn load(tool: &str) -> Vec<Capture> {
    let mut captures = captures(tool);
    for c in &mut captures {
        c.name = format!("{tool}/{}", c.name);
    }
    captures
}

/// Captures taken with missing or stale lists (the header's note says so); the rest
/// classify with fresh lists.
const STALE_LISTS: &[&str] = &["apt-get/install-unable-to-locate-empty-lists.txt"];

/// Captures whose class we decide on purpose, with why. `ambiguous` rows must be here.
const DECIDED: &[(&str, &str, &str)] = &[
    (
        "apt-get/update-dns-could-not-resolve.txt",
        "transient",
        "NXDOMAIN is likely a wrong host, but a flapping resolver says it too; retried \
         like other DNS failures (the policy bounds the cost)",
    ),
    (
        "dpkg/audit-interrupted-journal.txt",
        "transient",
        "`dpkg --audit` prints nothing for a pending journal (the 'dpkg was interrupted' \
         message is apt's): nothing to read, so it is an unrecognised failure, which retries",
    ),
];

fn repair_for(name: &str) -> Option<AptRepair> {
    [
        AptRepair::ConfigurePending,
        AptRepair::FixBroken,
        AptRepair::ClearLists,
        AptRepair::Update,
    ]
    .into_iter()
    .find(|r| r.name() == name)
}

#[test]
fn every_capture_is_classified_as_expected() {
    let mut captures = load("apt-get");
    captures.extend(load("dpkg"));
    assert!(captures.len() >= 40, "fixtures missing? {}", captures.len());
    let mut checked = 0;
    let mut problems = Vec::new();
    for c in &captures {
        let expect = c.expect.as_str();
        if expect == "ok" {
            // A control capture (the command succeeded): nothing to classify.
            continue;
        }
        let failure = c.failure();
        let context = if STALE_LISTS.contains(&c.name.as_str()) {
            ClassifyContext::stale()
        } else {
            ClassifyContext::fresh()
        };
        let verdict = classify(&failure, &context);
        let decided = DECIDED.iter().find(|(n, _, _)| *n == c.name);
        let want = match decided {
            Some((_, class, _)) => *class,
            None => {
                assert_ne!(
                    expect, "ambiguous",
                    "{}: ambiguous captures must be listed in DECIDED",
                    c.name
                );
                expect
            }
        };
        if verdict.class() != want {
            problems.push(format!("{}: expected {want}, got {verdict:?}", c.name));
            continue;
        }
        if let (Some(name), None) = (&c.repair, decided) {
            let want =
                repair_for(name).unwrap_or_else(|| panic!("{}: unknown repair {name}", c.name));
            match &verdict {
                Verdict::Repairable(r, _) if *r == want => {}
                other => problems.push(format!(
                    "{}: expected repair {want:?}, got {other:?}",
                    c.name
                )),
            }
        }
        assert!(!verdict.reason().is_empty(), "{}: empty reason", c.name);
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 40, "{checked}");
}

#[test]
fn reasons_are_short_and_name_what_failed() {
    let captures = load("apt-get");
    let reason = |name: &str, context: ClassifyContext| {
        let c = captures
            .iter()
            .find(|c| c.name == format!("apt-get/{name}"))
            .unwrap_or_else(|| panic!("{name} missing"));
        let failure = ToolFailure::new("apt-get", 100, "", c.body.clone());
        classify(&failure, &context)
    };
    assert_eq!(
        reason("update-503.txt", ClassifyContext::fresh()).reason(),
        "503 Service Unavailable from 127.0.0.1:18765"
    );
    let v = reason("install-unable-to-locate.txt", ClassifyContext::fresh());
    assert!(v.reason().contains("`em-fixture-no-such-package`"), "{v:?}");
    assert!(matches!(v, Verdict::Permanent(_, Some(_))), "{v:?}");
    let v = reason("install-lock-frontend.txt", ClassifyContext::fresh());
    // The pid is whatever held the lock when the fixture was captured.
    assert!(
        v.reason()
            .starts_with("the apt/dpkg lock is busy (held by process ")
            && v.reason().ends_with(" (python3))"),
        "{v:?}"
    );
    let v = reason("install-not-root.txt", ClassifyContext::fresh());
    assert!(
        matches!(&v, Verdict::Permanent(_, Some(h)) if h.contains("root")),
        "{v:?}"
    );
    let v = reason("install-version-not-found.txt", ClassifyContext::fresh());
    assert_eq!(
        v.reason(),
        "Version '9.9' for 'em-fixture-hello' was not found"
    );
    let v = reason(
        "install-no-installation-candidate-virtual.txt",
        ClassifyContext::fresh(),
    );
    assert_eq!(
        v.reason(),
        "package `em-fixture-virtual` has no installation candidate"
    );
    let v = reason("update-file-unexpected-size.txt", ClassifyContext::fresh());
    assert_eq!(
        v.reason(),
        "file of unexpected size from 127.0.0.1:18765 (mirror sync in progress?)"
    );
}

/// A failure of apt-get with this stderr.
fn apt(stderr: &str) -> Verdict<AptRepair> {
    classify(
        &ToolFailure::new("apt-get install -y x", 100, "", stderr),
        &ClassifyContext::fresh(),
    )
}

#[test]
fn rows_without_a_capture_yet() {
    // docs/failures.md apt table, literal messages.
    assert_eq!(
        apt("E: Failed to fetch http://deb.example.org/debian/dists/bookworm/InRelease  502  Bad Gateway [IP: 10.0.0.1 80]\n").class(),
        "transient"
    );
    assert_eq!(
        apt("E: Failed to fetch http://deb.example.org/x.deb  408  Request Timeout\n").class(),
        "transient"
    );
    assert_eq!(
        apt("E: Failed to fetch http://deb.example.org/x.deb  504  Gateway Time-out [IP: 10.0.0.1 80]\n").class(),
        "transient"
    );
    assert!(matches!(
        apt(
            "E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n"
        ),
        Verdict::Repairable(AptRepair::Update, _)
    ));
    assert_eq!(
        apt("E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)\n")
            .class(),
        "transient"
    );
    assert!(matches!(
        apt("E: Write error - write (28: No space left on device)\n"),
        Verdict::Permanent(..)
    ));
    let v = apt(
        "E: Release file for http://deb.example.org/debian/dists/bookworm-updates/InRelease is expired (invalid since 2d 3h). Updates for this repository will not be applied.\n",
    );
    assert!(
        matches!(&v, Verdict::Permanent(_, Some(h)) if h.contains("clock")),
        "{v:?}"
    );
    let v = apt(
        "E: Release file for http://deb.example.org/debian/dists/bookworm/InRelease is not valid yet (invalid for another 5h 2min 1s). Updates for this repository will not be applied.\n",
    );
    assert!(
        matches!(&v, Verdict::Permanent(_, Some(h)) if h.contains("clock")),
        "{v:?}"
    );
    let v = apt(
        "E: Failed to fetch http://deb.example.org/debian/dists/bookworm/InRelease  Clearsigned file isn't valid, got 'NOSPLIT' (does the network require authentication?)\n",
    );
    assert!(
        matches!(&v, Verdict::Transient(r) if r.contains("captive portal")),
        "{v:?}"
    );
    let v = apt(
        "W: GPG error: http://download.example.org stable InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 7EA0A9C3F273FCD8\nE: The repository 'http://download.example.org stable InRelease' is not signed.\n",
    );
    assert!(
        matches!(&v, Verdict::Permanent(r, Some(_)) if r.contains("7EA0A9C3F273FCD8")),
        "{v:?}"
    );
    assert!(matches!(
        apt("dpkg: dependency problems prevent configuration of foo:\n"),
        Verdict::Repairable(AptRepair::FixBroken, _)
    ));
    assert!(matches!(
        apt("sudo: a password is required\n"),
        Verdict::Permanent(..)
    ));
    // Several missing packages are all named.
    let v = apt("E: Unable to locate package em-a\nE: Unable to locate package em-b\n");
    assert_eq!(
        v.reason(),
        "packages `em-a`, `em-b` are not in the package lists (Unable to locate package)"
    );
    let v = classify(
        &ToolFailure::new(
            "apt-get install -y em-a",
            100,
            "",
            "E: Unable to locate package em-a\n",
        ),
        &ClassifyContext::stale(),
    );
    assert!(
        matches!(v, Verdict::Repairable(AptRepair::Update, _)),
        "{v:?}"
    );
    // Unknown failures retry (SPEC 3), quoting apt's error.
    let v = apt("E: Something new happened\n");
    assert_eq!(
        v,
        Verdict::Transient("unrecognised failure (exit 100): E: Something new happened".into())
    );
}

#[test]
fn a_failing_configure_is_permanent_but_the_same_text_from_an_install_is_repairable() {
    let text = "dpkg: error processing package em-x (--configure):\n installed em-x package post-installation script subprocess returned error exit status 1\nErrors were encountered while processing:\n em-x\n";
    let repair = classify(
        &ToolFailure::new("dpkg -i em-x.deb", 1, "", text),
        &ClassifyContext::fresh(),
    );
    assert!(matches!(
        repair,
        Verdict::Repairable(AptRepair::ConfigurePending, _)
    ));
    let fail = classify(
        &ToolFailure::new(
            "sudo -n -- env LC_ALL=C /usr/bin/dpkg --configure -a",
            1,
            "",
            text,
        ),
        &ClassifyContext::fresh(),
    );
    assert!(
        matches!(&fail, Verdict::Permanent(r, Some(_)) if r.contains("`em-x`")),
        "{fail:?}"
    );
}
