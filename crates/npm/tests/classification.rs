//! Every captured npm output under `fixtures/outputs/npm/` classified as its header says,
//! plus the rows of docs/failures.md / SPEC section 4 that have no captured file yet.

use std::path::Path;

use em_exec::{ToolFailure, Verdict};
use em_npm::{NpmRepair, classify};
use em_test_support::{capture, captures};

/// Files whose class we decide differently from (or, for `ambiguous`, more precisely than)
/// their `expect:` line, with the reason.
const DECIDED: &[(&str, &str, &str)] = &[(
    "enotfound.txt",
    "transient",
    "NXDOMAIN for the registry host: retried under the policy, so that the mirror chain \
     moves on to the next registry when it runs out (a permanent verdict would stop it); \
     see the crate doc",
)];

#[test]
fn every_captured_output_is_classified_as_expected() {
    let captures = captures("npm");
    assert!(captures.len() >= 20, "only {} npm fixtures", captures.len());
    let mut checked = 0;
    for fixture in &captures {
        if fixture.expect == "ok" {
            assert_eq!(fixture.exit, 0, "{}: an ok control exits 0", fixture.name);
            continue;
        }
        let verdict = classify(&fixture.failure());
        let decided = DECIDED.iter().find(|(f, ..)| *f == fixture.name);
        let want = match decided {
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
        assert!(!verdict.reason().is_empty(), "{}", fixture.name);
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn reasons_of_captured_outputs_read_well() {
    let reason = |file: &str| {
        classify(&capture("npm", file).failure())
            .reason()
            .to_string()
    };
    assert_eq!(
        reason("e503.txt"),
        "503 Service Unavailable from 127.0.0.1:18765"
    );
    assert_eq!(
        reason("e404-unknown-package.txt"),
        "package `em-fixture-no-such-package@*` not found from 127.0.0.1:18765 (E404)"
    );
    assert_eq!(
        reason("etarget.txt"),
        "no version matches `em-fixture-hello@2.0.0` (ETARGET)"
    );
    assert_eq!(
        reason("econnrefused.txt"),
        "connection refused (ECONNREFUSED) at 127.0.0.1:18764"
    );
    assert_eq!(
        reason("eai-again.txt"),
        "temporary DNS failure (EAI_AGAIN) at em-fixture.invalid:18765"
    );
    assert_eq!(
        reason("tarball-stall-timeout.txt"),
        "transfer stalled (EIDLETIMEOUT) at 127.0.0.1:18765"
    );
    assert_eq!(
        reason("etimedout-connect.txt"),
        "connection timed out (ETIMEDOUT) at 127.0.0.1:18766"
    );
    let e404 = classify(&capture("npm", "e404.txt").failure());
    match e404 {
        Verdict::Permanent(_, hint) => assert!(hint.expect("a hint").contains("token")),
        other => panic!("{other:?}"),
    }
}

fn verdict(code: i32, stderr: &str) -> Verdict<NpmRepair> {
    classify(&ToolFailure::new("npm install -g x", code, "", stderr))
}

/// Rows of docs/failures.md and SPEC section 4 without a captured file, with the messages as
/// docs/failures.md quotes them (and npm's usual lines around them).
#[test]
fn rows_without_a_captured_file() {
    let transient = [
        "npm error code ETIMEDOUT\nnpm error network request to https://registry.example.org/x failed, reason: connect ETIMEDOUT 104.16.0.35:443\n",
        "npm error code ERR_SOCKET_TIMEOUT\nnpm error network Socket timeout\n",
        "npm error code FETCH_ERROR\nnpm error network timeout at: https://registry.example.org/x\n",
        "npm error code ECONNRESET\nnpm error network aborted\n",
        "npm ERR! code ECONNRESET\nnpm ERR! network request to https://registry.example.org/x failed, reason: read ECONNRESET\n",
        "npm ERR! code E502\nnpm ERR! 502 Bad Gateway - GET https://registry.example.org/x\n",
        "npm ERR! network request failed\n",
    ];
    for text in transient {
        assert_eq!(verdict(1, text).class(), "transient", "{text}");
    }
    let permanent = [
        "npm error code EUSAGE\nnpm error\nnpm error Install a package\n",
        "npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree\n",
        "npm ERR! code E401\nnpm ERR! Unable to authenticate, need: Basic realm=\"x\"\n",
        "npm ERR! code ETARGET\nnpm ERR! notarget No matching version found for x@9.9.9.\n",
        "npm ERR! No matching version found for x@9.9.9.\n",
    ];
    for text in permanent {
        assert_eq!(verdict(1, text).class(), "permanent", "{text}");
    }
    let integrity = [
        "npm error code EINTEGRITY\nnpm error sha512-AAA integrity checksum failed when using sha512: wanted sha512-AAA but got sha512-BBB. (287 bytes)\n",
        "npm ERR! sha512-AAA integrity checksum failed when using sha512: wanted sha512-AAA but got sha512-BBB.\n",
    ];
    for text in integrity {
        assert_eq!(
            verdict(1, text),
            Verdict::Repairable(
                NpmRepair::CacheVerify,
                verdict(1, text).reason().to_string()
            )
        );
    }
}

#[test]
fn eacces_and_enospc_are_permanent_with_hints() {
    let v = verdict(
        243,
        "npm error code EACCES\nnpm error syscall mkdir\nnpm error path /usr/lib/node_modules/typescript\nnpm error errno -13\n",
    );
    assert_eq!(
        v.reason(),
        "permission denied: /usr/lib/node_modules/typescript (EACCES)"
    );
    match v {
        Verdict::Permanent(_, Some(hint)) => {
            assert!(hint.contains("root") && hint.contains("prefix"))
        }
        other => panic!("{other:?}"),
    }
    let v = verdict(
        228,
        "npm error code ENOSPC\nnpm error syscall write\nnpm error errno -28\nnpm error nospc ENOSPC: no space left on device, write\n",
    );
    assert_eq!(v.class(), "permanent");
    match v {
        Verdict::Permanent(_, Some(hint)) => assert!(hint.contains("npm cache clean --force")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn enotempty_on_a_global_rename_names_the_stale_directory() {
    // docs/failures.md: ENOTEMPTY (`rename ... directory not empty`).
    let text = "npm error code ENOTEMPTY\n\
        npm error syscall rename\n\
        npm error path /usr/lib/node_modules/npm\n\
        npm error dest /usr/lib/node_modules/.npm-i9nnxROI\n\
        npm error errno -39\n\
        npm error ENOTEMPTY: directory not empty, rename '/usr/lib/node_modules/npm' -> '/usr/lib/node_modules/.npm-i9nnxROI'\n";
    match verdict(217, text) {
        Verdict::Repairable(NpmRepair::RemoveStaleTemp(path), reason) => {
            assert_eq!(path, Path::new("/usr/lib/node_modules/.npm-i9nnxROI"));
            assert!(reason.contains("interrupted install"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_untrusted_certificate_is_permanent_and_names_npms_ca_settings() {
    for (file, said) in [
        (
            "tls-self-signed-in-chain.txt",
            "self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)",
        ),
        (
            "tls-unable-to-verify-leaf.txt",
            "unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
        ),
    ] {
        match classify(&capture("npm", file).failure()) {
            Verdict::Permanent(reason, Some(hint)) => {
                assert!(
                    reason.starts_with("the TLS certificate of 127.0.0.1:1844"),
                    "{reason}"
                );
                assert!(reason.ends_with(said), "{reason}");
                for setting in ["cafile", "NODE_EXTRA_CA_CERTS", "never strict-ssl=false"] {
                    assert!(hint.contains(setting), "{hint}");
                }
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}
