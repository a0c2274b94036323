//! `gst-stream-exporter`: serves the metrics textfiles written by gst-broadcast
//! pipelines (`GST_METRICS_TEXTFILE_DIR`) on one `/metrics` endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gstbroadcast_exporter::{http, sidecar};

/// Serves every fresh *.prom file of a directory (written by gst-broadcast
/// pipelines started with GST_METRICS_TEXTFILE_DIR) as one Prometheus
/// endpoint.
///
/// On each scrape of /metrics the files are read again: hidden files and
/// files not ending in .prom are ignored, files not modified within
/// --stale-after are skipped (their process is gone), malformed files are
/// skipped whole, and families shared by several files are merged under one
/// header. The exporter adds its own gst_exporter_* metrics. /healthz answers
/// "ok". Problems are logged to stderr once.
#[derive(Debug, Parser)]
#[command(name = "gst-stream-exporter", version)]
struct Cli {
    /// Address to listen on. The default is loopback only; pass e.g.
    /// 0.0.0.0:9465 to let other hosts scrape. Port 0 picks a free port (the
    /// bound address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9465")]
    listen_address: SocketAddr,

    /// Directory holding the *.prom files (the pipelines'
    /// GST_METRICS_TEXTFILE_DIR).
    #[arg(long, value_name = "DIR")]
    textfile_dir: PathBuf,

    /// Skip files not modified for this long: seconds ("30") or with a unit
    /// ("30s", "2m", "1h", "500ms"). 0 disables the check.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = sidecar::parse_duration)]
    stale_after: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match std::fs::metadata(&cli.textfile_dir) {
        Ok(m) if !m.is_dir() => {
            eprintln!(
                "gst-stream-exporter: --textfile-dir {} is not a directory",
                cli.textfile_dir.display()
            );
            return ExitCode::from(2);
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "gst-stream-exporter: warning: cannot read --textfile-dir {} yet: {e}",
            cli.textfile_dir.display()
        ),
    }
    let collector = Arc::new(sidecar::Sidecar::new(
        cli.textfile_dir.clone(),
        cli.stale_after,
        true,
    ));
    let server = match http::serve(cli.listen_address, http::Limits::default(), move || {
        collector.scrape()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "gst-stream-exporter: cannot listen on {}: {e}",
                cli.listen_address
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "gst-stream-exporter: serving {} on http://{}/metrics (stale after {:?})",
        cli.textfile_dir.display(),
        server.local_addr(),
        cli.stale_after
    );
    server.join();
    ExitCode::FAILURE
}
