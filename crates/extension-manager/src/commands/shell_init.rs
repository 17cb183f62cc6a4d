//! `extension-manager shell-init bash`: the shell helpers that existing extension scripts
//! call (`apt_install_retry 5 curl git`), as functions backed by this binary. A script
//! keeps working after `eval "$(extension-manager shell-init bash)"`, and gains
//! classification (a 404 is not retried), repairs, and bounded waits.

/// The shells we print functions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash (the functions are POSIX-compatible and also work in dash and zsh).
    Bash,
}

/// `shell-init`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ShellInitArgs {
    /// The shell to print functions for
    #[arg(value_enum)]
    shell: Shell,
}

/// The functions, calling the binary at `exe`.
pub fn script(exe: &str) -> String {
    let em = em_exec::quote(exe);
    format!(
        r#"# extension-manager shell helpers: eval "$(extension-manager shell-init bash)"
# Same names and arguments as the usual hand-written helpers; the first argument is the
# number of attempts. Failures are classified: permanent ones (404, unknown package) stop
# at once; transient ones are retried with exponential backoff; exit 75 when exhausted.
_em_seconds() {{ case "$1" in ''|*[!0-9]*) printf '%s' "$1" ;; *) printf '%ss' "$1" ;; esac; }}
# retry_with_backoff MAX_ATTEMPTS INITIAL_DELAY MAX_DELAY CMD [ARG...]  (delays in seconds, or 500ms/2s/1m)
retry_with_backoff() {{
  if [ "$#" -lt 4 ]; then echo "usage: retry_with_backoff MAX_ATTEMPTS INITIAL_DELAY MAX_DELAY CMD [ARG...]" >&2; return 2; fi
  local _em_a _em_d _em_m; _em_a="$1"; _em_d="$(_em_seconds "$2")"; _em_m="$(_em_seconds "$3")"; shift 3
  {em} retry --attempts "$_em_a" --backoff exponential --delay "$_em_d" --max "$_em_m" -- "$@"
}}
# apt_update_retry [MAX_ATTEMPTS]
apt_update_retry() {{ {em} apt update --attempts "${{1:-3}}"; }}
# apt_install_retry MAX_ATTEMPTS PKG...
apt_install_retry() {{
  if [ "$#" -lt 2 ]; then echo "usage: apt_install_retry MAX_ATTEMPTS PKG..." >&2; return 2; fi
  local _em_a; _em_a="$1"; shift; {em} apt install --attempts "$_em_a" -- "$@"
}}
# npm_install_retry MAX_ATTEMPTS PKG...   (global installs)
npm_install_retry() {{
  if [ "$#" -lt 2 ]; then echo "usage: npm_install_retry MAX_ATTEMPTS PKG..." >&2; return 2; fi
  local _em_a; _em_a="$1"; shift; {em} npm install --attempts "$_em_a" -- "$@"
}}
# pip_install_retry MAX_ATTEMPTS PKG...
pip_install_retry() {{
  if [ "$#" -lt 2 ]; then echo "usage: pip_install_retry MAX_ATTEMPTS PKG..." >&2; return 2; fi
  local _em_a; _em_a="$1"; shift; {em} pip install --attempts "$_em_a" -- "$@"
}}
# wget_retry MAX_ATTEMPTS URL [OUTPUT]   (no OUTPUT, or -: to stdout)
wget_retry() {{
  if [ "$#" -lt 2 ]; then echo "usage: wget_retry MAX_ATTEMPTS URL [OUTPUT]" >&2; return 2; fi
  {em} fetch --via wget --attempts "$1" "$2" -o "${{3:--}}"
}}
# curl_retry MAX_ATTEMPTS URL [OUTPUT]   (no OUTPUT, or -: to stdout)
curl_retry() {{
  if [ "$#" -lt 2 ]; then echo "usage: curl_retry MAX_ATTEMPTS URL [OUTPUT]" >&2; return 2; fi
  {em} fetch --via curl --attempts "$1" "$2" -o "${{3:--}}"
}}
"#
    )
}

/// Prints the functions for `args.shell`.
pub fn run(args: &ShellInitArgs) -> Result<u8, crate::error::CliError> {
    let Shell::Bash = args.shell;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where this binary is: {e}"))?;
    print!("{}", script(&exe.to_string_lossy()));
    Ok(crate::exit::OK)
}
