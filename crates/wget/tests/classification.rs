//! Every captured wget output under `fixtures/outputs/wget/` classified as its header says,
//! plus the rows of docs/failures.md / SPEC section 4 that have no captured file yet.

use std::time::Duration;

use em_exec::{ToolFailure, Verdict};
use em_test_support::{capture, captures};
use em_wget::{WgetRepair, classify};

/// Files whose class we decide differently from (or, for `ambiguous`, more precisely than)
/// their `expect:` line, with the reason. None so far.
const DECIDED: &[(&str, &str, &str)] = &[];

#[test]
fn every_captured_output_is_classified_as_expected() {
    let captures = captures("wget");
    assert!(
        captures.len() >= 15,
        "only {} wget fixtures",
        captures.len()
    );
    for fixture in &captures {
        if fixture.expect == "ok" {
            assert_eq!(fixture.exit, 0, "{}: an ok control exits 0", fixture.name);
            continue;
        }
        let verdict = classify(&fixture.failure());
        let want = match DECIDED.iter().find(|(f, ..)| *f == fixture.name) {
            Some((_, class, _)) => *class,
            None => {
                assert_ne!(
                    fixture.expect, "ambiguous",
                    "{}: an ambiguous fixture must be listed in DECIDED",
                    fixture.name
                );
                fixture.expect.as_str()
            }
        };
        assert_eq!(verdict.class(), want, "{}: {verdict:?}", fixture.name);
        if let Some(repair) = &fixture.repair {
            match &verdict {
                Verdict::Repairable(r, _) => {
                    assert_eq!(r.name(), repair, "{}", fixture.name)
                }
                other => panic!("{}: expected repair {repair}, got {other:?}", fixture.name),
            }
        }
        assert!(!verdict.reason().is_empty(), "{}", fixture.name);
    }
}

fn failure(code: i32, stderr: &str) -> ToolFailure {
    ToolFailure::new(
        "LC_ALL=C wget --tries=1 -O /dl/.x.em-partial https://example.org/x",
        code,
        "",
        stderr,
    )
}

#[test]
fn reasons_are_short_and_name_the_server() {
    let reason = |file: &str| {
        classify(&capture("wget", file).failure())
            .reason()
            .to_string()
    };
    assert_eq!(
        reason("http-503.txt"),
        "503 Service Unavailable from 127.0.0.1:18765"
    );
    assert!(
        reason("http-404.txt").starts_with("404 Not Found for http://127.0.0.1:18765/404/"),
        "{}",
        reason("http-404.txt")
    );
    assert_eq!(
        reason("connection-refused.txt"),
        "network failure talking to 127.0.0.1:18764: Connecting to 127.0.0.1:18764... failed: Connection refused."
    );
    assert_eq!(
        reason("truncated.txt"),
        "network failure talking to 127.0.0.1:18765: Connection closed at byte 131700."
    );
    assert_eq!(
        reason("dns-failure.txt"),
        "network failure talking to em-fixture.invalid:18765: wget: unable to resolve host address 'em-fixture.invalid'"
    );
}

/// SPEC section 4 and docs/failures.md rows with no captured file yet; messages are wget 1.21's.
#[test]
fn uncaptured_rows() {
    let transient = [
        (8, "2026-11-22 06:39:04 ERROR 500: Internal Server Error.\n"),
        (8, "2026-11-22 06:39:04 ERROR 502: Bad Gateway.\n"),
        (8, "2026-11-22 06:39:04 ERROR 504: Gateway Timeout.\n"),
        (8, "2026-11-22 06:39:04 ERROR 408: Request Timeout.\n"),
        (4, "Unable to establish SSL connection.\n"),
        (7, "wget: protocol error\n"),
    ];
    for (code, stderr) in transient {
        assert_eq!(
            classify(&failure(code, stderr)).class(),
            "transient",
            "{stderr}"
        );
    }
    let permanent = [
        (8, "2026-11-22 06:39:04 ERROR 410: Gone.\n"),
        (8, "2026-11-22 06:39:04 ERROR 400: Bad Request.\n"),
        (
            5,
            "ERROR: cannot verify example.org's certificate, issued by 'CN=x':\n  Unable to locally verify the issuer's authority.\nTo connect to example.org insecurely, use `--no-check-certificate'.\n",
        ),
        (
            2,
            "wget: unrecognized option '--bogus'\nUsage: wget [OPTION]... [URL]...\n",
        ),
        (1, "/proc/nonexistent/x: No such file or directory\n"),
    ];
    for (code, stderr) in permanent {
        assert_eq!(
            classify(&failure(code, stderr)).class(),
            "permanent",
            "{stderr}"
        );
    }
    assert_eq!(
        classify(&failure(8, "2026-11-22 06:39:04 ERROR 416: Requested Range Not Satisfiable.\n")),
        Verdict::Repairable(
            WgetRepair::DeletePartial("/dl/.x.em-partial".into()),
            "416 Requested Range Not Satisfiable from example.org: the partial file does not fit the remote file".into()
        )
    );
}

#[test]
fn certificate_failures_never_suggest_insecure() {
    match classify(&failure(
        5,
        "ERROR: cannot verify example.org's certificate\n",
    )) {
        Verdict::Permanent(_, Some(hint)) => {
            assert!(hint.contains("never weaken verification"), "{hint}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_after_from_the_server_response_is_honoured() {
    let stderr = "  HTTP/1.1 429 Too Many Requests\n  Retry-After: 2\n  Content-Length: 3\n\
                  2026-11-22 06:39:04 ERROR 429: Too Many Requests.\n";
    assert_eq!(
        classify(&failure(8, stderr)),
        Verdict::RetryAfter(
            "429 Too Many Requests from example.org".into(),
            Duration::from_secs(2)
        )
    );
}
