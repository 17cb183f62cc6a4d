//! Downloads with curl or wget: the one place that chooses the tool, for `download` steps,
//! a repository's key and `extension-manager fetch` alike.

use std::sync::Arc;

use em_curl::{Curl, CurlConfig};
use em_exec::download::{DownloadRequest, Landed};
use em_exec::{Runner, ToolError};
use em_manifest::Via;
use em_wget::{Wget, WgetConfig};

/// The tool to download with: `via` when the manifest or the command line names one, else
/// curl when it is on PATH or wget is not (so that with neither, the error names curl),
/// else wget.
pub fn choose(via: Option<Via>) -> Via {
    via.unwrap_or_else(|| {
        if which::which("curl").is_ok() || which::which("wget").is_err() {
            Via::Curl
        } else {
            Via::Wget
        }
    })
}

/// Downloads `request` with the tool [`choose`] picks, under `runner`'s policy.
pub async fn download(
    via: Option<Via>,
    runner: &Runner,
    request: &DownloadRequest,
) -> Result<Landed, ToolError> {
    match choose(via) {
        Via::Curl => {
            Arc::new(Curl::new(CurlConfig::default())?)
                .download(runner, request)
                .await
        }
        Via::Wget => {
            Arc::new(Wget::new(WgetConfig::default())?)
                .download(runner, request)
                .await
        }
    }
}
