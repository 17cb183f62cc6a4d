//! Each tool's real failure messages, as users reported them (the issue is named above each
//! case; the text is the tool's, trimmed to the lines it printed), and the class, reason and
//! hint they get. Host names of public registries are replaced by 127.0.0.1.

use em_exec::{ToolFailure, Verdict};
use em_lang::{LangRepair, LangTool, classify};

fn verdict(tool: LangTool, stderr: &str) -> Verdict<LangRepair> {
    classify(
        tool,
        &ToolFailure::new(format!("{tool} install x"), 1, "", stderr),
    )
}

fn class(tool: LangTool, stderr: &str) -> &'static str {
    verdict(tool, stderr).class()
}

fn hint(tool: LangTool, stderr: &str) -> String {
    match verdict(tool, stderr) {
        Verdict::Permanent(_, Some(h)) => h,
        other => panic!("not permanent with a hint: {other:?}"),
    }
}

// --- pipx -----------------------------------------------------------------------------

/// openai/evals#1588, sparfenyuk/mcp-proxy#86: what pipx shows when pip saw no versions
/// (an index that answered nothing or a name it does not have): transient, bounded.
const PIPX_VERSIONS_NONE: &str =
    "Fatal error from pip prevented installation. Full pip output in file:
    /root/.local/state/pipx/log/cmd_2025-06-18_12.56.40_pip_errors.log

Some possibly relevant errors from pip install:
    ERROR: Could not find a version that satisfies the requirement mcp-proxy (from versions: none)
    ERROR: No matching distribution found for mcp-proxy

Error installing mcp-proxy.
";

#[test]
fn pipx_versions_none_is_transient_and_a_missing_pin_permanent() {
    assert_eq!(class(LangTool::Pipx, PIPX_VERSIONS_NONE), "transient");
    let pinned = PIPX_VERSIONS_NONE
        .replace("(from versions: none)", "(from versions: 0.1.0, 0.2.0)")
        .replace("mcp-proxy\n\nError", "mcp-proxy==9.9\n\nError");
    assert_eq!(class(LangTool::Pipx, &pinned), "permanent");
    assert!(hint(LangTool::Pipx, &pinned).contains("does not exist"));
}

/// Our pipx e2e: on a fresh PIPX_HOME with an index that has no pip, pipx's shared-venv
/// upgrade logs pip's "not found" for `pip` first. That is not the app's failure: a
/// missing pin of the app stays permanent, and pip's exhausted retries are the outage
/// they are, not pipx's "failed to build" guess.
const PIPX_SHARED_LIBS_FAILED: &str = "Failed to upgrade shared libraries
Traceback (most recent call last):
subprocess.CalledProcessError: Command '['/tmp/h/shared/bin/python', '-m', 'pip', 'install', '-q', '--upgrade', 'pip', 'setuptools', 'wheel']' returned non-zero exit status 1.
ERROR: Could not find a version that satisfies the requirement pip (from versions: none)
ERROR: No matching distribution found for pip
installing em-fixture-greet...
Fatal error from pip prevented installation. Full pip output in file:
    /tmp/h/logs/cmd_pip_errors.log
";

#[test]
fn pipxs_shared_library_upgrade_does_not_decide_the_verdict() {
    let missing_pin = format!(
        "{PIPX_SHARED_LIBS_FAILED}
Some possibly relevant errors from pip install:
    ERROR: Could not find a version that satisfies the requirement black==99 (from versions: 24.1.0)
    ERROR: No matching distribution found for black==99
"
    );
    assert_eq!(class(LangTool::Pipx, &missing_pin), "permanent");
    // What pipx 1.1 printed in our e2e when the wheel got 503s: its build-failure guess,
    // then pip's real error.
    let outage = format!(
        "{PIPX_SHARED_LIBS_FAILED}
pip seemed to fail to build package:
    em-fixture-greet

Some possibly relevant errors from pip install:
    ERROR: Could not install packages due to an OSError: HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /packages/em_fixture_greet-1.0-py3-none-any.whl (Caused by ResponseError('too many 503 error responses'))
"
    );
    match verdict(LangTool::Pipx, &outage) {
        Verdict::Transient(why) => assert!(why.contains("Max retries exceeded"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// Debian's pipx 1.1 given a wheel without a console-script entry point (a library), on a
/// fresh PIPX_HOME whose index is down (the shared-library upgrade fails first, harmlessly).
#[test]
fn pipx_refuses_a_library_permanently_with_a_hint() {
    let text = "Failed to upgrade shared libraries
Traceback (most recent call last):
pipx.util.PipxError: '/tmp/pxh/shared/bin/python -m pip --disable-pip-version-check install
--force-reinstall -q --upgrade pip setuptools wheel' failed
determining package name from '/tmp/libx/dist/em_fixture_lib-1.0-py3-none-any.whl'...
creating virtual environment...
installing em-fixture-lib from spec '/tmp/libx/dist/em_fixture_lib-1.0-py3-none-any.whl'...

No apps associated with package em-fixture-lib or its dependencies. If you are
attempting to install a library, pipx should not be used. Consider using pip
or a similar tool instead.
";
    match verdict(LangTool::Pipx, text) {
        Verdict::Permanent(reason, Some(hint)) => {
            assert_eq!(
                reason,
                "em-fixture-lib has no command for pipx to install (no console-script entry point)"
            );
            assert!(hint.contains("`pip` step"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    // pipx 1.1's other form, when a dependency has apps.
    let deps = "No apps associated with package em-fixture-lib. Try again\nwith '--include-deps'";
    assert_eq!(class(LangTool::Pipx, deps), "permanent");
}

/// Debian's pipx 1.1 given two packages in one install (the fresh-rootfs run): a usage
/// error, never worth a retry.
#[test]
fn pipx_usage_errors_are_permanent() {
    let text = "usage: pipx install [-h] [--include-deps] [--verbose] package_spec\n\
                pipx: error: unrecognized arguments: ruff==0.6.9\n";
    assert_eq!(class(LangTool::Pipx, text), "permanent");
    assert!(hint(LangTool::Pipx, text).contains("pipx --version"));
}

/// bitpicky/dbt-sugar#483 and Jsakkos/mkv-episode-matcher#60: a dependency that does not build.
#[test]
fn pipx_build_failure_is_permanent_with_a_hint() {
    let text = "Fatal error from pip prevented installation. Full pip output in file:
    /root/.local/pipx/logs/cmd_2025-07-07_11.42.58_pip_errors.log

pip seemed to fail to build package:
    MySQL-python<2.0.0,>=1.2.5

Some possibly relevant errors from pip install:
    error: subprocess-exited-with-error
    ModuleNotFoundError: No module named 'ConfigParser'
";
    assert!(hint(LangTool::Pipx, text).contains("build-essential"));
}

/// pip's urllib3 errors (pypa/pip#9489, conbench/conbench#815), as pipx quotes them.
#[test]
fn pipx_network_errors_are_transient() {
    for text in [
        "Some possibly relevant errors from pip install:\n    pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPConnectionPool(host='127.0.0.1', port=18765): Read timed out.\n",
        "    ERROR: HTTP error 503 while getting http://127.0.0.1:18765/packages/black-24.4.2-py3-none-any.whl\n",
        "    ERROR: Exception:\n    ConnectionResetError: [Errno 104] Connection reset by peer\n",
    ] {
        assert_eq!(class(LangTool::Pipx, text), "transient", "{text}");
    }
}

/// pypa/pipx#492 (`pipx list` on a venv whose Python went away) and pypa/pipx#592 (the
/// venv's python without pip): `pipx reinstall` rebuilds it.
#[test]
fn pipx_broken_venv_is_repaired_by_reinstall() {
    let invalid = "venvs are in /root/.local/pipx/venvs\napps are exposed on your $PATH at /root/.local/bin\n   package okta-awscli has invalid interpreter /home/linuxbrew/.linuxbrew/Cellar/python@3.8/3.8.5/bin/python3.7\n";
    assert_eq!(
        verdict(LangTool::Pipx, invalid),
        Verdict::Repairable(
            LangRepair::PipxReinstall("okta-awscli".into()),
            "the pipx venv of okta-awscli is broken (its interpreter or pip is missing)".into()
        )
    );
    let no_pip = "/root/.local/pipx/venvs/virtualenv/bin/python: No module named pip\n\nError installing virtualenv.\n";
    assert!(matches!(
        verdict(LangTool::Pipx, no_pip),
        Verdict::Repairable(LangRepair::PipxReinstall(n), _) if n == "virtualenv"
    ));
}

#[test]
fn pipx_certificate_errors_are_permanent_and_never_weaken_verification() {
    let text = "    ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='127.0.0.1', port=8443): Max retries exceeded with url: /simple/black/ (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)')))\n";
    assert!(hint(LangTool::Pipx, text).contains("never turned off"));
}

// --- cargo ----------------------------------------------------------------------------

/// rust-lang/cargo#10183: a server that does not answer, after cargo's own retries.
#[test]
fn cargo_network_errors_are_transient() {
    let refused =
        "warning: spurious network error (2 tries remaining): [7] Couldn't connect to server
warning: spurious network error (1 tries remaining): [7] Couldn't connect to server
error: failed to download from `http://127.0.0.1:18765/api/v1/crates/unicode-width/0.1.9/download`

Caused by:
  [7] Couldn't connect to server
";
    assert_eq!(
        verdict(LangTool::Cargo, refused),
        Verdict::Transient("network error (7] Couldn't connect to server)".into())
    );
    // rust-lang/cargo#12365: a stalled download.
    let stalled = "warning: spurious network error (3 tries remaining): [28] Timeout was reached (failed to download any data for `fyroxed v0.14.1` within 30s)\n";
    assert_eq!(class(LangTool::Cargo, stalled), "transient");
    // rust-lang/cargo#12714 and darkarp/chromepass#40: 503 and 504 from the registry.
    let e504 = "warning: spurious network error (1 tries remaining): failed to get 200 response from `http://127.0.0.1:18765/api/v1/crates/polyval/0.5.2/download`, got 504
error: failed to download from `http://127.0.0.1:18765/api/v1/crates/polyval/0.5.2/download`

Caused by:
  failed to get 200 response from `http://127.0.0.1:18765/api/v1/crates/polyval/0.5.2/download`, got 504
";
    assert_eq!(
        verdict(LangTool::Cargo, e504),
        Verdict::Transient("HTTP 504 from the registry".into())
    );
}

/// rust-lang/cargo#8753 and ChaseSunstrom/cforge#7: a crate or version that is not there.
#[test]
fn cargo_missing_crate_is_permanent() {
    let text = "    Updating crates.io index\nerror: could not find `tarpaulin` in registry `crates-io` with version `=0.14.3`\n";
    match verdict(LangTool::Cargo, text) {
        Verdict::Permanent(reason, Some(hint)) => {
            assert_eq!(
                reason,
                "could not find `tarpaulin` in registry `crates-io` with version `=0.14.3`"
            );
            assert!(hint.contains("ripgrep"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cargo_compile_errors_are_permanent_with_a_hint() {
    let text = "   Compiling openssl-sys v0.9.102
error: failed to run custom build command for `openssl-sys v0.9.102`
  Could not find openssl via pkg-config
error: failed to compile `cargo-edit v0.12.3`, intermediate artifacts can be found at `/tmp/cargo-installXyZ`.
";
    assert!(hint(LangTool::Cargo, text).contains("libssl-dev"));
}

/// rust-lang/cargo#1610: a git index locked by a concurrent or crashed cargo: wait.
#[test]
fn cargo_locked_index_waits() {
    let text = "    Updating registry `http://127.0.0.1:18765/crates.io-index`\nUnable to update registry http://127.0.0.1:18765/crates.io-index\n\nCaused by:\n  [10] The index is locked. This might be due to a concurrent or crashed process\n";
    assert_eq!(
        verdict(LangTool::Cargo, text),
        Verdict::Transient("cargo's registry index is locked by another cargo: waiting".into())
    );
}

#[test]
fn cargo_certificate_errors_are_permanent() {
    let text = "error: failed to download from `https://127.0.0.1:8443/api/v1/crates/x/1.0.0/download`\n\nCaused by:\n  [60] SSL peer certificate or SSH remote key was not OK (SSL certificate problem: self-signed certificate)\n";
    assert!(hint(LangTool::Cargo, text).contains("CARGO_HTTP_CAINFO"));
}

// --- gem ------------------------------------------------------------------------------

/// hammackj/risu#60: a 503 from the gem source.
#[test]
fn gem_5xx_and_network_errors_are_transient() {
    let e503 = "ERROR:  While executing gem ... (Gem::RemoteFetcher::FetchError)\n    bad response Service Unavailable 503 (http://127.0.0.1:18765/gems/rdoc-3.12.gem)\n";
    assert_eq!(
        verdict(LangTool::Gem, e503),
        Verdict::Transient("HTTP 503 from the gem source".into())
    );
    // ruby/rubygems#2095: connection refused, with the "could not find" line first.
    let refused = "ERROR:  Could not find a valid gem 'bundler' (>= 0) in any repository\nERROR:  While executing gem ... (Gem::RemoteFetcher::FetchError)\n    Errno::ECONNREFUSED: Connection refused - connect(2) (http://127.0.0.1:18764/latest_specs.4.8.gz)\n";
    assert_eq!(class(LangTool::Gem, refused), "transient");
    // rubygems/rubygems.org#1332: DNS.
    let dns = "ERROR:  Could not find a valid gem 'nokogiri' (>= 0), here is why:\n          Unable to download data from http://127.0.0.1:18765 - no such name (http://127.0.0.1:18765/specs.4.8.gz)\n";
    assert_eq!(class(LangTool::Gem, dns), "transient");
    // ruby/rubygems#2184: a reset during the TLS handshake.
    let reset = "ERROR:  While executing gem ... (Gem::RemoteFetcher::FetchError)\n    Errno::ECONNRESET: Connection reset by peer - SSL_connect (https://127.0.0.1:8443/gems/semver2-3.4.2.gem)\n";
    assert_eq!(class(LangTool::Gem, reset), "transient");
}

/// Strech/termin_de#11: a gem that is not on the source.
#[test]
fn gem_not_found_is_permanent() {
    let text = "ERROR:  Could not find a valid gem 'termin_de' (>= 0) in any repository\n";
    match verdict(LangTool::Gem, text) {
        Verdict::Permanent(reason, Some(_)) => assert_eq!(
            reason,
            "Could not find a valid gem 'termin_de' (>= 0) in any repository"
        ),
        other => panic!("{other:?}"),
    }
}

/// ruby/rubygems#1112: the certificate.
#[test]
fn gem_certificate_errors_are_permanent() {
    let text = "ERROR:  Could not find a valid gem 'sass' (>= 0), here is why:\n          Unable to download data from https://127.0.0.1:8443/ - SSL_connect returned=1 errno=0 state=SSLv3 read server certificate B: certificate verify failed (https://127.0.0.1:8443/latest_specs.4.8.gz)\n";
    assert!(hint(LangTool::Gem, text).contains("SSL_CERT_FILE"));
}

// --- go -------------------------------------------------------------------------------

/// golang/go#78907, goproxyio/goproxy#231: a version the proxy does not have.
#[test]
fn go_unknown_revision_is_permanent() {
    let text = "go: nhooyr.io/websocket@v1.8.7: nhooyr.io/websocket@v1.8.7: reading http://127.0.0.1:18765/nhooyr.io/websocket/@v/v1.8.7.info: 404 Not Found\n\tserver response: not found: nhooyr.io/websocket@v1.8.7: invalid version: unknown revision v1.8.7\n";
    assert_eq!(class(LangTool::Go, text), "permanent");
    // vc60er/deptree#16
    let latest =
        "go: github.com/vc60er/deptree@latest: no matching versions for query \"latest\"\n";
    assert_eq!(class(LangTool::Go, latest), "permanent");
}

/// dominikh/go-tools#372 (a reset), golang/go#40241 (a connect that timed out), and a 503.
#[test]
fn go_network_errors_are_transient() {
    let reset = "go: honnef.co/go/tools@v0.0.0-20180920025451-e3ad64cb4ed3: unrecognized import path \"honnef.co/go/tools\" (https fetch: Get http://127.0.0.1:18765/go/tools?go-get=1: read tcp 127.0.0.1:51234->127.0.0.1:18765: read: connection reset by peer)\n";
    assert_eq!(
        verdict(LangTool::Go, reset),
        Verdict::Transient("network error (connection reset by peer)".into())
    );
    let timeout = "go: golang.org/x/tools/gopls@v0.16.2: golang.org/x/tools/gopls@v0.16.2: Get \"http://127.0.0.1:18765/golang.org/x/tools/gopls/@v/v0.16.2.info\": dial tcp 127.0.0.1:18765: i/o timeout\n";
    assert_eq!(class(LangTool::Go, timeout), "transient");
    let e503 = "go: golang.org/x/tools/gopls@v0.16.2: reading http://127.0.0.1:18765/golang.org/x/tools/gopls/@v/v0.16.2.zip: 503 Service Unavailable\n";
    assert_eq!(
        verdict(LangTool::Go, e503),
        Verdict::Transient("HTTP 503 from the module proxy".into())
    );
}

#[test]
fn go_compile_and_certificate_errors_are_permanent() {
    let build = "# example.org/tool\n/root/go/pkg/mod/example.org/tool@v1.0.0/main.go:12:2: undefined: slices.Concat\n";
    assert!(hint(LangTool::Go, build).contains("pin a version"));
    let x509 = "go: golang.org/x/tools/gopls@v0.16.2: Get \"https://127.0.0.1:8443/golang.org/x/tools/gopls/@v/v0.16.2.info\": tls: failed to verify certificate: x509: certificate signed by unknown authority\n";
    assert!(hint(LangTool::Go, x509).contains("GOINSECURE is never set"));
}

/// Anything unrecognised retries (SPEC 3), for every tool.
#[test]
fn unknown_failures_are_transient() {
    for tool in LangTool::ALL {
        assert_eq!(
            class(tool, "something odd happened\n"),
            "transient",
            "{tool}"
        );
    }
}
