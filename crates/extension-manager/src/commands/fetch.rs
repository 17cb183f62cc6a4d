//! `extension-manager fetch URL -o FILE`: a download under a retry policy, through curl
//! or wget, landing atomically (temp file beside FILE, sha256 checked, rename). `-o -`
//! writes the verified file to stdout instead, so `fetch URL -o - | sh` never runs half a
//! script.

use std::io::Write;
use std::path::PathBuf;

use em_exec::download::{DownloadRequest, Sha256};

use crate::adapter_context::AdapterContext;
use crate::adapter_context::PolicyName;
use crate::error::CliError;
use crate::exit;
use crate::policy_options::PolicyOptions;

/// `--via`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// curl (the default when present)
    Curl,
    /// wget
    Wget,
}

impl From<Via> for em_manifest::Via {
    fn from(via: Via) -> Self {
        match via {
            Via::Curl => em_manifest::Via::Curl,
            Via::Wget => em_manifest::Via::Wget,
        }
    }
}

/// `fetch`'s arguments.
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    policy: PolicyOptions,
    /// The URL (https, unless --allow-http)
    #[arg(value_name = "URL")]
    url: String,
    /// Where the file lands; `-` writes it to stdout once it is complete and verified
    #[arg(short = 'o', value_name = "FILE", required = true)]
    file: PathBuf,
    /// The expected SHA-256 of the file (64 hex digits); a mismatch leaves nothing behind
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    sha256: Option<Sha256>,
    /// The tool that downloads [default: curl when present, else wget]
    #[arg(long, value_enum)]
    via: Option<Via>,
    /// Allow plain http:// URLs (a sha256 is then strongly advised)
    #[arg(long)]
    allow_http: bool,
    /// An alternate URL of the same file, tried in order when the primary keeps failing
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// The largest the file may be ("500MiB", "2GB" or bytes) [default: the configuration's
    /// `[download] max_size`, else 8 GiB; the free space caps it further]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            format!("`{text}` is not a size: write e.g. 500MiB, 2GB or a number of bytes")
        })
}

fn parse_sha256(text: &str) -> Result<Sha256, String> {
    Sha256::parse(text)
}

/// Runs `fetch`; `Err` is a usage error (exit 2).
pub async fn run(args: FetchArgs, context: &AdapterContext) -> Result<u8, CliError> {
    let policy = args
        .policy
        .apply(&context.base_policy(PolicyName::Download))?;
    let to_stdout = args.file.as_os_str() == "-";
    // For stdout, the file lands in a private temporary directory first.
    let scratch = if to_stdout {
        Some(tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?)
    } else {
        None
    };
    let dest = match &scratch {
        Some(dir) => dir.path().join("download"),
        None if args.file.is_absolute() => args.file.clone(),
        None => std::env::current_dir()
            .map_err(|e| format!("cannot tell the current directory: {e}"))?
            .join(&args.file),
    };
    let request = DownloadRequest {
        url: args.url.clone(),
        mirrors: args.mirrors.clone(),
        dest,
        sha256: args.sha256,
        allow_http: args.allow_http,
        mode: None,
        max_size: args.max_size.or(context.config.download_max_size),
    };
    request
        .validate()
        .map_err(|e| e.replace("(`allow_http = true`)", "(--allow-http)"))?;
    let runner = context.runner(policy, false);
    let landed = em_install::download::download(args.via.map(Into::into), &runner, &request).await;
    let landed = match landed {
        Ok(landed) => landed,
        Err(e) => return Ok(context.report(&e, false)),
    };
    if to_stdout {
        let bytes = std::fs::read(&landed.path)
            .map_err(|e| format!("cannot read the downloaded file: {e}"))?;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
            // A closed pipe (`| head`) is the reader's choice, not a failure of ours.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                context
                    .ui
                    .error(&format!("cannot write to stdout: {e}"), None);
                return Ok(exit::FAILURE);
            }
        }
    }
    Ok(exit::OK)
}
