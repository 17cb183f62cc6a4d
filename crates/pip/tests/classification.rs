//! Every captured pip output under `fixtures/outputs/pip/` classified as its header says,
//! plus the rows of docs/failures.md / SPEC section 4 that have no captured file yet.

use em_exec::{ToolFailure, Verdict};
use em_pip::{ClassifyContext, PipRepair, ProbeResult, ambiguous_project, classify};
use em_test_support::{capture, captures};

/// What a probe of the fixture's index page would have answered, read from the capture
/// server's behaviour in the file's `note:` (the capture server fails every path under
/// `/503/`, `/429/`, ...; nothing listens on 18764; `em-fixture.invalid` does not resolve).
/// Files not listed are not ambiguous: no probe runs.
/// Makes the probe answer of one fixture.
type ProbeOf = fn() -> ProbeResult;

const PROBES: &[(&str, ProbeOf)] = &[
    ("connection-refused.txt", || {
        ProbeResult::Unreachable("URLError <urlopen error [Errno 111] Connection refused>".into())
    }),
    ("dns-failure.txt", || {
        ProbeResult::Unreachable(
            "URLError <urlopen error [Errno -2] Name or service not known>".into(),
        )
    }),
    ("index-429.txt", || ProbeResult::ServerError(429)),
    ("index-503.txt", || ProbeResult::ServerError(503)),
    ("index-503-with-retries.txt", || {
        ProbeResult::ServerError(503)
    }),
    ("index-hang-no-retries.txt", || {
        ProbeResult::Unreachable("TimeoutError timed out".into())
    }),
    ("no-matching-distribution-404.txt", || ProbeResult::NotFound),
];

/// Files whose class we decide differently from (or, for `ambiguous`, more precisely than)
/// their `expect:` line, with the reason.
const DECIDED: &[(&str, &str, &str)] = &[
    (
        "connection-refused.txt",
        "transient",
        "`(from versions: none)`, the probe finds the index unreachable",
    ),
    (
        "dns-failure.txt",
        "transient",
        "`(from versions: none)`, the probe cannot resolve the index host",
    ),
    (
        "index-429.txt",
        "transient",
        "`(from versions: none)`, the probe gets 429",
    ),
    (
        "index-503.txt",
        "transient",
        "`(from versions: none)`, the probe gets 503",
    ),
    (
        "index-503-with-retries.txt",
        "transient",
        "pip retried the 503 silently; the probe gets 503",
    ),
    (
        "index-hang-no-retries.txt",
        "transient",
        "`(from versions: none)`, the probe times out",
    ),
    (
        "download-truncated-hash-mismatch.txt",
        "repairable",
        "a hash mismatch: purge the cache and retry with --no-cache-dir, once (the runner makes a second mismatch permanent)",
    ),
    (
        "require-hashes-mismatch.txt",
        "repairable",
        "a hash mismatch: purge the cache and retry with --no-cache-dir, once",
    ),
];

#[test]
fn every_captured_output_is_classified_as_expected() {
    let captures = captures("pip");
    assert!(captures.len() >= 20, "only {} pip fixtures", captures.len());
    for fixture in &captures {
        let failure = fixture.failure();
        if fixture.expect == "ok" {
            assert_eq!(fixture.exit, 0, "{}: an ok control exits 0", fixture.name);
            continue;
        }
        let probe = PROBES
            .iter()
            .find(|(f, _)| *f == fixture.name)
            .map(|(_, p)| p());
        // The probe is asked for exactly when the output is ambiguous.
        assert_eq!(
            ambiguous_project(&failure).is_some(),
            probe.is_some(),
            "{}: ambiguous = {:?}",
            fixture.name,
            ambiguous_project(&failure)
        );
        let verdict = classify(&failure, &ClassifyContext { index: None, probe });
        let want = match DECIDED.iter().find(|(f, ..)| *f == fixture.name) {
            Some((_, class, _)) => *class,
            None => {
                assert_ne!(
                    fixture.expect, "ambiguous",
                    "{}: ambiguous, list the decision in DECIDED",
                    fixture.name
                );
                fixture.expect.as_str()
            }
        };
        assert_eq!(
            verdict.class(),
            want,
            "{}: {:?} (expect: {})",
            fixture.name,
            verdict,
            fixture.expect
        );
        if let Some(repair) = &fixture.repair {
            match &verdict {
                Verdict::Repairable(r, _) => assert_eq!(r.name(), repair, "{}", fixture.name),
                other => panic!("{}: wants repair {repair}, got {other:?}", fixture.name),
            }
        }
    }
}

fn reason(file: &str, probe: Option<ProbeResult>) -> Verdict<PipRepair> {
    classify(
        &capture("pip", file).failure(),
        &ClassifyContext { index: None, probe },
    )
}

#[test]
fn reasons_and_hints_of_captured_outputs() {
    assert_eq!(
        reason("no-matching-distribution-404.txt", Some(ProbeResult::NotFound)),
        Verdict::Permanent(
            "no package `em-fixture-no-such-project` on the index http://127.0.0.1:18765/ok/simple/".into(),
            Some("check the name (pip compares names with `-`, `_` and `.` as equal)".into())
        )
    );
    assert_eq!(
        reason("no-matching-distribution-404.txt", None).class(),
        "transient",
        "not probed: cannot tell, retry"
    );
    assert_eq!(
        reason("no-matching-distribution-versions.txt", None).reason(),
        "no version of `em-fixture-hello==2.0` is available (the index has: 1.0)"
    );
    assert_eq!(
        reason("connection-refused-with-retries.txt", None).reason(),
        "connection refused at 127.0.0.1:18764"
    );
    assert_eq!(
        reason("dns-failure-with-retries.txt", None).reason(),
        "name resolution failed at em-fixture.invalid:18765"
    );
    assert_eq!(
        reason("download-503.txt", None).reason(),
        "HTTP 503 (pip's own retries ran out) at 127.0.0.1:18765"
    );
    assert_eq!(
        reason("download-stall-read-timeout.txt", None).reason(),
        "read timed out at 127.0.0.1:18765"
    );
    match reason("externally-managed-environment.txt", None) {
        Verdict::Permanent(_, Some(hint)) => assert!(hint.contains("venv"), "{hint}"),
        other => panic!("{other:?}"),
    }
    match reason("invalid-requirement.txt", None) {
        Verdict::Permanent(r, Some(hint)) => {
            assert_eq!(r, "invalid requirement: 'em-fixture-hello=1.0'");
            assert_eq!(hint, "= is not a valid operator. Did you mean == ?");
        }
        other => panic!("{other:?}"),
    }
    match reason("untrusted-http-host.txt", None) {
        Verdict::Permanent(r, Some(hint)) => {
            assert!(r.contains("em-fixture.invalid"), "{r}");
            assert!(hint.contains("PIP_TRUSTED_HOST"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

fn verdict(code: i32, text: &str) -> Verdict<PipRepair> {
    classify(
        &ToolFailure::new("python3 -m pip install x", code, "", text),
        &ClassifyContext::default(),
    )
}

/// docs/failures.md / SPEC rows without a captured file, with the messages docs/failures.md quotes.
#[test]
fn rows_without_a_captured_file() {
    for text in [
        "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.example.org', port=443): Max retries exceeded with url: /simple/x/\n",
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/x/\nERROR: Could not find a version that satisfies the requirement x (from versions: none)\n",
        "pip._vendor.urllib3.exceptions.ProtocolError: ('Connection broken: IncompleteRead(1024 bytes read, 2048 more expected)', IncompleteRead(1024 bytes read, 2048 more expected))\n",
        "  ERROR: HTTP error 503 while getting https://files.example.org/x-1.0.whl\n",
        "  ERROR: HTTP error 429 while getting https://files.example.org/x-1.0.whl\n",
    ] {
        assert_eq!(
            verdict(if text.contains("ProtocolError") { 2 } else { 1 }, text).class(),
            "transient",
            "{text}"
        );
    }
    for text in [
        "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n",
        "ERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.\nERROR: ResolutionImpossible: for help visit https://pip.pypa.io/\n",
        "/usr/bin/python3: No module named pip\n",
        "The virtual environment was not created successfully because ensurepip is not\navailable.  On Debian/Ubuntu systems, you need to install the python3-venv\npackage\n",
        "ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/usr/lib/python3/dist-packages/x'\n",
    ] {
        assert_eq!(verdict(1, text).class(), "permanent", "{text}");
    }
    match verdict(
        1,
        "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n",
    ) {
        Verdict::Permanent(_, Some(hint)) => assert!(hint.contains("pip cache purge")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_untrusted_certificate_is_permanent_before_the_ambiguous_not_found() {
    for file in [
        "tls-certificate-verify-failed.txt",
        "tls-certificate-verify-failed-with-retries.txt",
    ] {
        let failure = capture("pip", file).failure();
        assert_eq!(ambiguous_project(&failure), None, "{file}: no probe needed");
        match classify(&failure, &ClassifyContext::default()) {
            Verdict::Permanent(reason, Some(hint)) => {
                assert_eq!(
                    reason,
                    "the TLS certificate of 127.0.0.1:18443 is not trusted: self-signed \
                     certificate in certificate chain (CERTIFICATE_VERIFY_FAILED)",
                    "{file}"
                );
                for setting in ["PIP_CERT", "pip.conf", "never --trusted-host"] {
                    assert!(hint.contains(setting), "{hint}");
                }
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}
