//! `extension-manager shell-init bash`: the shell helpers that existing extension scripts
//! call (`apt_install_retry 5 curl git`), as functions backed by this binary. A script
//! keeps working after `eval "$(extension-manager shell-init bash)"`, and gains
//! classification (a 404 is not retried), repairs, and bounded waits.

/// The shells we print functions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash (4.4 or later: the helpers use arrays and `mapfile`).
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
    SCRIPT.replace("@EM@", &em)
}

/// The helpers, with `@EM@` for the binary. Bash: arrays keep every argument one word.
const SCRIPT: &str = r#"# extension-manager shell helpers: eval "$(extension-manager shell-init bash)"
# The names and arguments of the usual hand-written helpers; the first argument is the
# number of attempts. Failures are classified: permanent ones (404, unknown package) stop
# at once; transient ones are retried with backoff. Tool flags are accepted from a
# known-safe list per helper (anything else is refused: exit 2). A failure returns 1 as the
# old helpers did (EM_SHELL_EXIT_CODES=full: 1 permanent, 75 try later); plain http:// URLs
# need EM_ALLOW_HTTP=1. The functions are exported: `bash -c` children have them too.
_em_usage() { echo "usage: $1" >&2; return 2; }
_em_done() {
  local rc="$1"
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || [ "${EM_SHELL_EXIT_CODES:-}" = full ]; then return "$rc"; fi
  return 1
}
_em_refuse() { echo "$1: $2 is not supported here (known: $3)" >&2; return 2; }
_em_words() { local -a _em_w; read -r -a _em_w <<< "$1"; printf '%s\n' "${_em_w[@]}"; }
_em_http() {
  case "$2" in
    http://*) if [ "${EM_ALLOW_HTTP:-}" = 1 ]; then echo --allow-http; else
        echo "$1: $2 is plain http://: set EM_ALLOW_HTTP=1 to allow it (and pin a sha256)" >&2; return 2; fi ;;
  esac
}
_em_seconds() { case "$1" in ''|*[!0-9]*) printf '%s' "$1" ;; *) printf '%ss' "$1" ;; esac; }
# retry_with_backoff MAX_ATTEMPTS INITIAL_DELAY MAX_DELAY CMD [ARG...]   (seconds, or 500ms/2s/1m)
# retry_with_backoff MAX_ATTEMPTS INITIAL_DELAY "COMMAND STRING"          (run by bash -c)
retry_with_backoff() {
  if [ "$#" -eq 3 ]; then
    @EM@ retry --attempts "$1" --backoff exponential --delay "$(_em_seconds "$2")" --max 60s -- bash -c "$3"
    return
  fi
  if [ "$#" -lt 4 ]; then _em_usage "retry_with_backoff MAX_ATTEMPTS INITIAL_DELAY MAX_DELAY CMD [ARG...] (or MAX_ATTEMPTS INITIAL_DELAY \"COMMAND\")"; return; fi
  local _em_a _em_d _em_m; _em_a="$1"; _em_d="$(_em_seconds "$2")"; _em_m="$(_em_seconds "$3")"; shift 3
  @EM@ retry --attempts "$_em_a" --backoff exponential --delay "$_em_d" --max "$_em_m" -- "$@"
}
# apt_update_retry [MAX_ATTEMPTS]   (a stale third-party source is a warning, as before)
apt_update_retry() { @EM@ apt update --allow-failed-sources --attempts "${1:-3}"; _em_done "$?"; }
# apt_install_retry MAX_ATTEMPTS [-y -q -qq --no-install-recommends] PKG...   ("tree jq" is two)
apt_install_retry() {
  if [ "$#" -lt 2 ]; then _em_usage "apt_install_retry MAX_ATTEMPTS PKG..."; return; fi
  local _em_a="$1" _em_x; shift; local -a _em_p=()
  for _em_x in "$@"; do
    case "$_em_x" in
      -y|--yes|--assume-yes|-q|-qq|--quiet|--no-install-recommends) ;;
      -*) _em_refuse apt_install_retry "$_em_x" "-y -q -qq --no-install-recommends"; return ;;
      *) mapfile -t -O "${#_em_p[@]}" _em_p < <(_em_words "$_em_x") ;;
    esac
  done
  @EM@ apt install --attempts "$_em_a" -- "${_em_p[@]}"; _em_done "$?"
}
# npm_install_retry MAX_ATTEMPTS [-g|--global] PKG...   (without -g: into ./node_modules)
npm_install_retry() {
  if [ "$#" -lt 2 ]; then _em_usage "npm_install_retry MAX_ATTEMPTS [-g] PKG..."; return; fi
  local _em_a="$1" _em_x _em_scope=--local; shift; local -a _em_p=()
  for _em_x in "$@"; do
    case "$_em_x" in
      -g|--global) _em_scope= ;;
      -q|--quiet|--silent|--no-audit|--no-fund|--save|-S|--no-progress) ;;
      -*) _em_refuse npm_install_retry "$_em_x" "-g --global -q --silent --no-audit --no-fund --save"; return ;;
      *) mapfile -t -O "${#_em_p[@]}" _em_p < <(_em_words "$_em_x") ;;
    esac
  done
  @EM@ npm install --attempts "$_em_a" ${_em_scope:+"$_em_scope"} -- "${_em_p[@]}"; _em_done "$?"
}
# pip_install_retry MAX_ATTEMPTS [--user -q --no-cache-dir] PKG...
pip_install_retry() {
  if [ "$#" -lt 2 ]; then _em_usage "pip_install_retry MAX_ATTEMPTS [--user] PKG..."; return; fi
  local _em_a="$1" _em_x _em_user=; shift; local -a _em_p=()
  for _em_x in "$@"; do
    case "$_em_x" in
      --user) _em_user=--user ;;
      -q|--quiet|--no-cache-dir|--disable-pip-version-check|--no-warn-script-location) ;;
      -*) _em_refuse pip_install_retry "$_em_x" "--user -q --no-cache-dir --disable-pip-version-check"; return ;;
      *) mapfile -t -O "${#_em_p[@]}" _em_p < <(_em_words "$_em_x") ;;
    esac
  done
  @EM@ pip install --attempts "$_em_a" ${_em_user:+"$_em_user"} -- "${_em_p[@]}"; _em_done "$?"
}
# _em_fetch HELPER VIA ATTEMPTS URL OUTPUT: OUTPUT "" is the URL's file name in the
# current directory (as wget does), "-" is stdout.
_em_fetch() {
  local _em_h="$1" _em_via="$2" _em_a="$3" _em_u="$4" _em_o="$5" _em_allow
  if [ -z "$_em_u" ]; then _em_usage "$_em_h MAX_ATTEMPTS URL [-O FILE]"; return; fi
  _em_allow="$(_em_http "$_em_h" "$_em_u")" || return
  if [ -z "$_em_o" ]; then
    _em_o="${_em_u%%[?#]*}"; _em_o="${_em_o##*/}"; _em_o="${_em_o:-index.html}"
  fi
  @EM@ fetch --via "$_em_via" --attempts "$_em_a" ${_em_allow:+"$_em_allow"} "$_em_u" -o "$_em_o"; _em_done "$?"
}
# wget_retry MAX_ATTEMPTS URL [OUTPUT]   or wget's own: wget_retry N [-q -nv -c] URL [-O FILE]
# (no OUTPUT: the URL's file name in the current directory; - : stdout)
wget_retry() {
  if [ "$#" -lt 2 ]; then _em_usage "wget_retry MAX_ATTEMPTS URL [OUTPUT | -O FILE]"; return; fi
  local _em_a="$1" _em_u= _em_o=; shift
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -O|--output-document) _em_o="${2:?wget_retry: -O needs a file}"; shift ;;
      --output-document=*) _em_o="${1#*=}" ;;
      -O?*) _em_o="${1#-O}" ;;
      -q|--quiet|-nv|--no-verbose|-c|--continue) ;;
      -*) _em_refuse wget_retry "$1" "-O FILE -q -nv -c"; return ;;
      *) if [ -z "$_em_u" ]; then _em_u="$1"; elif [ -z "$_em_o" ]; then _em_o="$1"; else
           _em_usage "wget_retry MAX_ATTEMPTS URL [OUTPUT | -O FILE]"; return; fi ;;
    esac
    shift
  done
  _em_fetch wget_retry wget "$_em_a" "$_em_u" "$_em_o"
}
# curl_retry MAX_ATTEMPTS URL [OUTPUT]   or curl's own: curl_retry N -fsSL URL [-o FILE | -O]
# (no OUTPUT: stdout, as curl does; -O: the URL's file name in the current directory)
curl_retry() {
  if [ "$#" -lt 2 ]; then _em_usage "curl_retry MAX_ATTEMPTS URL [OUTPUT | -o FILE]"; return; fi
  local _em_a="$1" _em_u= _em_o= _em_remote=; shift
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -o|--output) _em_o="${2:?curl_retry: -o needs a file}"; shift ;;
      -O|--remote-name) _em_remote=1 ;;
      --fail|--silent|--show-error|--location|--compressed) ;;
      -[fsSL]*) case "${1#-}" in *[!fsSL]*) _em_refuse curl_retry "$1" "-f -s -S -L -o FILE -O"; return ;; esac ;;
      -*) _em_refuse curl_retry "$1" "-f -s -S -L (and -fsSL) -o FILE -O --fail --silent --show-error --location"; return ;;
      *) if [ -z "$_em_u" ]; then _em_u="$1"; elif [ -z "$_em_o" ]; then _em_o="$1"; else
           _em_usage "curl_retry MAX_ATTEMPTS URL [OUTPUT | -o FILE]"; return; fi ;;
    esac
    shift
  done
  if [ -z "$_em_o" ] && [ -z "$_em_remote" ]; then _em_o=-; fi
  _em_fetch curl_retry curl "$_em_a" "$_em_u" "$_em_o"
}
if [ -n "${BASH_VERSION:-}" ]; then
  export -f _em_usage _em_done _em_refuse _em_words _em_http _em_seconds _em_fetch \
    retry_with_backoff apt_update_retry apt_install_retry npm_install_retry pip_install_retry \
    wget_retry curl_retry
fi
"#;

/// Prints the functions for `args.shell`.
pub fn run(args: &ShellInitArgs) -> Result<u8, crate::error::CliError> {
    let Shell::Bash = args.shell;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot tell where this binary is: {e}"))?;
    print!("{}", script(&exe.to_string_lossy()));
    Ok(crate::exit::OK)
}
