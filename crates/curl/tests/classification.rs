//! Every captured curl output under `fixtures/outputs/curl/` classified as its header says,
//! plus the rows of docs/failures.md / SPEC section 4 that have no captured file yet.

use std::path::Path;
use std::time::Duration;

use em_curl::{CurlRepair, classify};
use em_exec::{ToolFailure, Verdict};
use em_test_support::{capture, captures};

/// Files whose class we decide differently from (or, for `ambiguous`, more precisely than)
/// their `expect:` line, with the reason. None so far: exit 18 (`partial-file.txt`) is
/// transient as captured; the resume happens because the next attempt finds the partial
/// file and adds `-C -`, not through a repair.
const DECIDED: &[(&str, &str, &str)] = &[];

#[test]
fn every_captured_output_is_classified_as_expected() {
    let captures = captures("curl");
    assert!(
        captures.len() >= 15,
        "only {} curl fixtures",
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
        "LC_ALL=C curl --fail -o /dl/.x.em-partial https://example.org/x",
        code,
        "",
        stderr,
    )
}

#[test]
fn reasons_name_the_status_and_the_url_or_host() {
    let f = capture("curl", "http-503.txt").failure();
    assert_eq!(
        classify(&f),
        Verdict::Transient("503 Service Unavailable from 127.0.0.1:18765".into())
    );
    let f = capture("curl", "http-404.txt").failure();
    match classify(&f) {
        Verdict::Permanent(reason, hint) => {
            assert!(
                reason.starts_with("404 Not Found for http://127.0.0.1:18765/404/"),
                "{reason}"
            );
            assert!(hint.expect("a hint").contains("check the URL"));
        }
        other => panic!("{other:?}"),
    }
    let f = capture("curl", "connection-refused.txt").failure();
    assert_eq!(
        classify(&f).reason(),
        "could not connect: Failed to connect to 127.0.0.1 port 18764 after 0 ms: Couldn't connect to server"
    );
}

#[test]
fn the_repair_names_the_partial_file_of_the_command() {
    let f = capture("curl", "resume-not-supported.txt").failure();
    match classify(&f) {
        Verdict::Repairable(CurlRepair::DeletePartial(path), _) => {
            assert_eq!(path, Path::new("/tmp/em-capture/curl.partial"))
        }
        other => panic!("{other:?}"),
    }
}

/// SPEC section 4 and docs/failures.md rows with no captured file yet; messages are curl 7.88's.
#[test]
fn uncaptured_rows() {
    let transient = [
        (5, "curl: (5) Could not resolve proxy: proxy.example"),
        (16, "curl: (16) Error in the HTTP2 framing layer"),
        (
            35,
            "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to example.org:443",
        ),
        (55, "curl: (55) Failed sending data to the peer"),
        (
            92,
            "curl: (92) HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR (err 2)",
        ),
        (95, "curl: (95) HTTP/3 error"),
        (96, "curl: (96) QUIC connection error"),
        (22, "curl: (22) The requested URL returned error: 408"),
        (22, "curl: (22) The requested URL returned error: 500"),
        (22, "curl: (22) The requested URL returned error: 502"),
        (22, "curl: (22) The requested URL returned error: 504"),
    ];
    for (code, stderr) in transient {
        assert_eq!(
            classify(&failure(code, stderr)).class(),
            "transient",
            "{stderr}"
        );
    }
    let repairable = [
        (36, "curl: (36) Bad download resume"),
        (
            33,
            "curl: (33) HTTP server doesn't seem to support byte ranges. Cannot resume.",
        ),
        (22, "curl: (22) The requested URL returned error: 416"),
    ];
    for (code, stderr) in repairable {
        assert_eq!(
            classify(&failure(code, stderr)),
            Verdict::Repairable(
                CurlRepair::DeletePartial("/dl/.x.em-partial".into()),
                classify(&failure(code, stderr)).reason().to_string()
            ),
            "{stderr}"
        );
    }
    let permanent = [
        (
            1,
            "curl: (1) Protocol \"ftp\" not supported or disabled in libcurl",
        ),
        (2, "curl: (2) Failed initialization"),
        (3, "curl: (3) URL using bad/illegal format or missing URL"),
        (
            4,
            "curl: (4) A requested feature, protocol or option was not found built-in",
        ),
        (22, "curl: (22) The requested URL returned error: 401"),
        (22, "curl: (22) The requested URL returned error: 410"),
        (27, "curl: (27) Out of memory"),
        (43, "curl: (43) A libcurl function was given a bad argument"),
        (47, "curl: (47) Maximum (50) redirects followed"),
        (48, "curl: (48) An unknown option was passed in to libcurl"),
        (58, "curl: (58) unable to set private key file"),
        (59, "curl: (59) failed setting cipher list"),
        (
            60,
            "curl: (60) SSL certificate problem: unable to get local issuer certificate",
        ),
        (63, "curl: (63) Maximum file size exceeded"),
        (67, "curl: (67) Access denied: 530"),
        (77, "curl: (77) error setting certificate verify locations"),
        (78, "curl: (78) The file does not exist"),
        (83, "curl: (83) SSL: issuer check failed"),
        (
            90,
            "curl: (90) SSL: public key does not match pinned public key",
        ),
        (91, "curl: (91) No OCSP response received"),
    ];
    for (code, stderr) in permanent {
        assert_eq!(
            classify(&failure(code, stderr)).class(),
            "permanent",
            "{stderr}"
        );
    }
}

#[test]
fn certificate_failures_never_suggest_insecure() {
    match classify(&failure(
        60,
        "curl: (60) SSL certificate problem: certificate has expired",
    )) {
        Verdict::Permanent(reason, Some(hint)) => {
            assert!(reason.contains("certificate of example.org"), "{reason}");
            assert!(hint.contains("never weaken verification"), "{hint}");
            assert!(hint.contains("clock"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_redirect_to_http_is_explained() {
    // curl 7.88 with `--proto-redir =https` on a redirect to http://.
    match classify(&failure(
        1,
        "curl: (1) Protocol \"http\" not supported or disabled in libcurl\n",
    )) {
        Verdict::Permanent(reason, Some(hint)) => {
            assert!(reason.contains("redirect to http://"), "{reason}");
            assert!(hint.contains("allow_http"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn write_errors_point_at_the_destination_directory() {
    let f = capture("curl", "write-error-dev-full.txt").failure();
    match classify(&f) {
        Verdict::Permanent(_, Some(hint)) => assert!(hint.contains("/dev"), "{hint}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_after_from_the_header_dump_is_honoured() {
    let f = ToolFailure::new(
        "curl --dump-header - -o /dl/.x.em-partial https://example.org/x",
        22,
        "HTTP/2 429\r\nretry-after: 7\r\ncontent-length: 3\r\n\r\n",
        "curl: (22) The requested URL returned error: 429\n",
    );
    assert_eq!(
        classify(&f),
        Verdict::RetryAfter(
            "429 Too Many Requests from example.org".into(),
            Duration::from_secs(7)
        )
    );
    // An unreasonable wait falls back to the policy's backoff.
    let mut long = f.clone();
    long.stdout = "HTTP/2 503\r\nretry-after: 86400\r\n\r\n".into();
    long.stderr = "curl: (22) The requested URL returned error: 503\n".into();
    assert_eq!(classify(&long).class(), "transient");
    assert!(matches!(classify(&long), Verdict::Transient(_)));
}

#[test]
fn unknown_exits_retry() {
    assert_eq!(
        classify(&failure(99, "curl: (99) something new")).class(),
        "transient"
    );
    assert_eq!(classify(&failure(137, "")).class(), "transient");
}
