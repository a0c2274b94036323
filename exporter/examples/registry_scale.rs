//! Benchmark (not a test): scrape latency of the in-process `/metrics`
//! endpoint with the families of N `streammetrics` streams registered.
//!
//! ```sh
//! cargo run --release -p gst-broadcast-exporter --example registry_scale -- [--streams 1000] [--scrapes 500] [--fps 30]
//! ```
//!
//! Registers the eight `streammetrics` families for N streams (labels
//! `pipeline=p<k/50>`, `element=m<k>`, `stream=video`), keeps updating them
//! from a background thread (so scrapes contend with writers) at `--fps`
//! frames per second per stream (default 30, i.e. 30 000 buffers/s for 1000
//! streams; `--fps 0` updates as fast as one thread can), starts
//! [`gstbroadcast_exporter::start_http`] on `127.0.0.1:0` and performs the
//! scrapes one after another with a plain `std::net::TcpStream` HTTP/1.1
//! client (`Connection: close`). Each latency covers connect, request and the
//! whole response up to EOF.
//!
//! Prints body size, series count, p50/p90/p99/max latency and the goal
//! `p99 < 20 ms`. Exits 0 whether the goal passes or not; non-zero only when
//! something errors (bad arguments, bind failure, non-200 or short response).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstbroadcast_exporter as exporter;

const GOAL_P99_MS: f64 = 20.0;

struct Args {
    streams: usize,
    scrapes: usize,
    fps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        streams: 1000,
        scrapes: 500,
        fps: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || -> Result<usize, String> {
            let v = match inline.clone() {
                Some(v) => v,
                None => it.next().ok_or_else(|| format!("{key} needs a value"))?,
            };
            v.parse::<usize>()
                .map_err(|_| format!("{key}: not a number: {v:?}"))
        };
        match key.as_str() {
            "--streams" => args.streams = value()?,
            "--scrapes" => args.scrapes = value()?,
            "--fps" => args.fps = value()?,
            "-h" | "--help" => {
                println!(
                    "usage: registry_scale [--streams N (1000)] [--scrapes N (500)] [--fps N (30; 0 = unpaced)]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?} (try --help)")),
        }
    }
    if args.streams == 0 || args.scrapes == 0 {
        return Err("--streams and --scrapes must be at least 1".into());
    }
    Ok(args)
}

/// The handles of one stream, resolved once, as the element does.
struct Series {
    frames: prometheus::IntCounter,
    keyframes: prometheus::IntCounter,
    bytes: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
    gop_interval: prometheus::Histogram,
    gop_length: prometheus::IntGauge,
    jitter: prometheus::Gauge,
    bitrate: prometheus::Gauge,
}

fn register(streams: usize) -> Vec<Series> {
    let frames = exporter::counter_vec("gst_stream_frames_total", "Buffers (frames) seen.");
    let keyframes = exporter::counter_vec(
        "gst_stream_keyframes_total",
        "Buffers without the DELTA_UNIT flag (keyframes).",
    );
    let bytes = exporter::counter_vec("gst_stream_bytes_total", "Payload bytes seen.");
    let dropped = exporter::counter_vec(
        "gst_stream_frames_dropped_total",
        "Frames missing: PTS/DTS gaps against the frame duration, RTP sequence gaps, late QoS events.",
    );
    let gop_interval = exporter::histogram_vec(
        "gst_stream_gop_interval_seconds",
        "Keyframe-to-keyframe interval by PTS, encoded video only.",
        vec![
            0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0,
        ],
    );
    let gop_length = exporter::gauge_vec(
        "gst_stream_gop_length_frames",
        "Frames in the last complete GOP, encoded video only.",
    );
    let jitter = exporter::float_gauge_vec(
        "gst_stream_jitter_seconds",
        "RFC 3550 interarrival jitter of buffer arrival against PTS (or RTP timestamp), 1/16 smoothing.",
    );
    let bitrate = exporter::float_gauge_vec(
        "gst_stream_data_rate_bytes_per_second",
        "Data rate over the last one-second window of PTS (multiply by 8 for bits/s).",
    );

    (0..streams)
        .map(|k| {
            let pipeline = format!("p{}", k / 50);
            let element = format!("m{k}");
            let l: [&str; 3] = [&pipeline, &element, "video"];
            let s = Series {
                frames: frames.with_label_values(&l),
                keyframes: keyframes.with_label_values(&l),
                bytes: bytes.with_label_values(&l),
                dropped: dropped.with_label_values(&l),
                gop_interval: gop_interval.with_label_values(&l),
                gop_length: gop_length.with_label_values(&l),
                jitter: jitter.with_label_values(&l),
                bitrate: bitrate.with_label_values(&l),
            };
            // Some history: a few minutes of 30 fps video, GOP 60.
            let f = 3000 + (k as u64 % 97) * 30;
            s.frames.inc_by(f);
            s.keyframes.inc_by(f / 60);
            s.bytes.inc_by(f * 16_000);
            s.dropped.inc_by(k as u64 % 3);
            for g in 0..(f / 60).min(20) {
                s.gop_interval
                    .observe(2.0 + ((k as u64 + g) % 5) as f64 * 0.01);
            }
            s.gop_length.set(60);
            s.jitter.set(0.0012 + (k % 10) as f64 * 1e-4);
            s.bitrate.set(500_000.0 + (k % 7) as f64 * 1000.0);
            s
        })
        .collect()
}

/// Keeps updating every stream like a running pipeline would, until `stop`:
/// one frame per stream per pass, `fps` passes per second (0: unpaced).
fn spawn_updater(
    series: Arc<Vec<Series>>,
    fps: usize,
    stop: Arc<AtomicBool>,
    frames_done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("metrics-updater".into())
        .spawn(move || {
            let period = (fps > 0).then(|| Duration::from_secs_f64(1.0 / fps as f64));
            let start = Instant::now();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                for (k, s) in series.iter().enumerate() {
                    let i = n + k as u64;
                    s.frames.inc();
                    s.bytes.inc_by(16_000 + (n % 512));
                    s.jitter.set(0.001 + (i % 100) as f64 * 1e-5);
                    if i.is_multiple_of(60) {
                        s.keyframes.inc();
                        s.gop_interval.observe(2.0);
                        s.gop_length.set(60);
                    }
                    if i.is_multiple_of(30) {
                        s.bitrate.set(500_000.0 + (n % 1000) as f64);
                    }
                    if i.is_multiple_of(1000) {
                        s.dropped.inc();
                    }
                }
                n += 1;
                frames_done.fetch_add(series.len() as u64, Ordering::Relaxed);
                match period {
                    Some(p) => {
                        let next = start + p * (n as u32);
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                    }
                    None => std::thread::yield_now(),
                }
            }
        })
        .expect("spawn updater thread")
}

/// One scrape with a fresh connection; returns (latency, body).
fn scrape(addr: SocketAddr) -> Result<(Duration, Vec<u8>), String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .map_err(|e| format!("write request: {e}"))?;
    let mut resp = Vec::with_capacity(4 << 20);
    s.read_to_end(&mut resp)
        .map_err(|e| format!("read response: {e}"))?;
    let elapsed = t0.elapsed();

    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("response without a complete head")?;
    let head = std::str::from_utf8(&resp[..head_end]).map_err(|_| "head not UTF-8")?;
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected status line {status:?}"));
    }
    let body = resp[head_end + 4..].to_vec();
    let content_length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    match content_length {
        Some(n) if n != body.len() => {
            return Err(format!("short body: {} of {n} bytes", body.len()));
        }
        None if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked") =>
        {
            return Err("chunked body not expected (no Content-Length)".into());
        }
        _ => {}
    }
    Ok((elapsed, body))
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    // Nearest-rank percentile.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn run(args: Args) -> Result<(), String> {
    let t_reg = Instant::now();
    let series = Arc::new(register(args.streams));
    let reg_time = t_reg.elapsed();

    let addr = exporter::start_http("127.0.0.1:0".parse().unwrap())
        .map_err(|e| format!("start_http: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let updater = spawn_updater(series.clone(), args.fps, stop.clone(), updates.clone());

    // Warm-up scrape (not counted): first-use allocations, page faults.
    let (_, first) = scrape(addr)?;
    let text = String::from_utf8(first).map_err(|_| "body not UTF-8")?;
    let series_count = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let expected = args.streams * (4 + 3 + 13 + 1 + 2);

    // Render cost alone (no HTTP), for comparison.
    let t_render = Instant::now();
    let renders = 20;
    for _ in 0..renders {
        std::hint::black_box(exporter::render_text());
    }
    let render_ms = t_render.elapsed().as_secs_f64() * 1e3 / renders as f64;

    let u0 = updates.load(Ordering::Relaxed);
    let t_all = Instant::now();
    let mut lat = Vec::with_capacity(args.scrapes);
    let mut bytes_total = 0usize;
    for _ in 0..args.scrapes {
        let (d, body) = scrape(addr)?;
        bytes_total += body.len();
        lat.push(d);
    }
    let wall = t_all.elapsed();
    let u1 = updates.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = updater.join();

    lat.sort();
    let mean_ms = lat.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / lat.len() as f64;
    let p99 = pct(&lat, 99.0);

    println!("registry_scale: {} streams, {} sequential scrapes of http://{addr}/metrics (Connection: close)", args.streams, args.scrapes);
    println!(
        "  registration of {} streams: {:.1} ms",
        args.streams,
        reg_time.as_secs_f64() * 1e3
    );
    println!(
        "  body: {} bytes ({:.2} MiB), {} series in {} families (expected {} series from this benchmark)",
        text.len(),
        text.len() as f64 / (1024.0 * 1024.0),
        series_count,
        families,
        expected
    );
    println!("  render_text() alone: {render_ms:.2} ms per call (mean of {renders})");
    println!(
        "  scrape latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (min {:.2}, mean {:.2})",
        pct(&lat, 50.0),
        pct(&lat, 90.0),
        p99,
        lat.last().unwrap().as_secs_f64() * 1e3,
        lat[0].as_secs_f64() * 1e3,
        mean_ms
    );
    println!(
        "  throughput: {:.1} scrapes/s, {:.1} MiB/s; background writer during scrapes: {:.0} frames/s ({})",
        args.scrapes as f64 / wall.as_secs_f64(),
        bytes_total as f64 / (1024.0 * 1024.0) / wall.as_secs_f64(),
        (u1 - u0) as f64 / wall.as_secs_f64(),
        if args.fps == 0 {
            "unpaced".to_string()
        } else {
            format!("target {} fps x {} streams", args.fps, args.streams)
        }
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!(
            "  machine: {} cpus, load average {} (other work on the cores inflates the tail)",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load.join(" ")
        );
    }
    println!(
        "  goal: p99 < {GOAL_P99_MS} ms -> {} (p99 {:.2} ms, ratio p99/goal {:.2})",
        if p99 < GOAL_P99_MS { "PASS" } else { "FAIL" },
        p99,
        p99 / GOAL_P99_MS
    );
    if series_count < expected {
        return Err(format!(
            "scrape shows {series_count} series, fewer than the {expected} registered"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("registry_scale: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry_scale: error: {e}");
            ExitCode::FAILURE
        }
    }
}
