//! End-to-end checks of the metrics ways out with the real Prometheus tools:
//! a `prometheus` server scraping a live pipeline's in-process endpoint
//! (`GST_METRICS_ADDR`) and the `gst-stream-exporter` sidecar
//! (`GST_METRICS_TEXTFILE_DIR`), `promtool check metrics` on both endpoints,
//! the sidecar's staleness rule after `kill -9`, and the shipped Grafana
//! dashboard and Prometheus configuration (`pipelines/`).
//!
//! Everything listens on 127.0.0.1 on ports picked at run time; every child
//! process is killed when its guard drops, also when an assertion fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use gst_broadcast_e2e::*;

// ------------------------------------------------------------------ pipelines

/// One live H.264 stream through `streammetrics name=m stream-name=video`.
const VIDEO_PIPELINE: &str = "videotestsrc is-live=true ! \
    video/x-raw,format=I420,width=320,height=180,framerate=30/1 ! \
    x264enc key-int-max=30 tune=zerolatency speed-preset=ultrafast bitrate=300 ! \
    h264parse ! streammetrics name=m stream-name=video ! fakesink";

/// Encodes the two renditions played by [`hls_pipeline`] into `dir`
/// (45 s each, Matroska): 320x180 with a keyframe every 2 s and 160x90 with
/// one every 1.5 s. Pre-encoded on purpose: hlsladdersink asks live encoders
/// for keyframes at its cuts, which a file cannot honour, so every segment
/// overruns the 1 s target duration and the second variant misses cuts.
fn encode_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("a.mkv"), dir.join("b.mkv"));
    let out = gst_launch(&format!(
        "videotestsrc num-buffers=1350 pattern=smpte ! \
         video/x-raw,format=I420,width=320,height=180,framerate=30/1 ! tee name=t \
         t. ! queue ! x264enc key-int-max=60 tune=zerolatency speed-preset=ultrafast \
         bitrate=300 option-string=scenecut=0 ! h264parse ! matroskamux ! filesink location={} \
         t. ! queue ! videoscale ! video/x-raw,width=160,height=90,pixel-aspect-ratio=1/1 ! \
         x264enc key-int-max=45 tune=zerolatency speed-preset=ultrafast bitrate=150 \
         option-string=scenecut=0 ! h264parse ! matroskamux ! filesink location={}",
        a.display(),
        b.display()
    ))
    .env_remove("GST_METRICS_ADDR")
    .env_remove("GST_METRICS_TEXTFILE_DIR")
    .output()
    .expect("gst-launch-1.0 runs");
    assert!(
        out.status.success(),
        "encoding the inputs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (a, b)
}

/// The renditions of [`encode_inputs`], paced in real time by `clocksync`,
/// through `streammetrics` (`m0`/`video0`, `m1`/`video1`) into
/// `hlsladdersink name=s` with a 1 s target duration, so that
/// `gst_hls_target_duration_overruns_total` and
/// `gst_hls_keyframe_misalignments_total` get series next to the counters
/// of a healthy ladder.
fn hls_pipeline(inputs: &(PathBuf, PathBuf), out: &Path) -> String {
    let branch = |file: &Path, i: usize| {
        format!(
            "filesrc location={} ! matroskademux ! h264parse ! \
             video/x-h264,stream-format=byte-stream,alignment=au ! clocksync ! \
             streammetrics name=m{i} stream-name=video{i} ! s.video_{i} ",
            file.display()
        )
    };
    format!(
        "{}{}hlsladdersink name=s output-directory={} target-duration=1 playlist-type=live",
        branch(&inputs.0, 0),
        branch(&inputs.1, 1),
        out.display()
    )
}

// ------------------------------------------------------------------ processes

/// A child process killed (SIGKILL) and reaped when dropped; its stdout and
/// stderr go to a log file shown in failure messages.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's output so far.
    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the process's output if it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status}):\n{}", self.name, self.output());
        }
    }

    /// SIGKILL (`kill -9`) and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Brings the GStreamer registry cache up to date once, with no metrics
/// variables set. Otherwise a stale cache (the plugins were just rebuilt)
/// makes gst-launch-1.0 fork gst-plugin-scanner, which loads our plugins
/// with the test's environment: it would take the endpoint's port for a
/// moment and leave a textfile of its own behind.
fn warm_registry() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for element in ["streammetrics", "hlsladdersink"] {
            let out = Command::new("gst-inspect-1.0")
                .arg(element)
                .env("GST_PLUGIN_PATH", plugin_dir())
                .env_remove("GST_METRICS_ADDR")
                .env_remove("GST_METRICS_TEXTFILE_DIR")
                .env_remove("GST_METRICS_INTERVAL_MS")
                .output()
                .expect("gst-inspect-1.0 runs");
            assert!(
                out.status.success(),
                "gst-inspect-1.0 {element} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A pipeline run by `gst-launch-1.0 -e` with the workspace plugins and
/// the given metrics environment.
fn spawn_pipeline(dir: &Path, tag: &str, desc: &str, env: &[(&str, String)]) -> Proc {
    warm_registry();
    let mut cmd = gst_launch(desc);
    for k in [
        "GST_METRICS_ADDR",
        "GST_METRICS_TEXTFILE_DIR",
        "GST_METRICS_INTERVAL_MS",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc::spawn("gst-launch-1.0", cmd, dir.join(format!("{tag}.log")))
}

/// The `gst-stream-exporter` binary next to the plugins.
fn sidecar_bin() -> PathBuf {
    let bin = plugin_dir().join("gst-stream-exporter");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release --workspace",
        bin.display()
    );
    bin
}

/// Starts the sidecar on 127.0.0.1, port 0, over `textfiles`; returns it
/// with the address it printed.
fn spawn_sidecar(dir: &Path, textfiles: &Path, stale_after: &str) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(sidecar_bin());
    cmd.args(["--listen-address", "127.0.0.1:0", "--textfile-dir"])
        .arg(textfiles)
        .args(["--stale-after", stale_after]);
    let mut p = Proc::spawn("gst-stream-exporter", cmd, dir.join("sidecar.log"));
    let addr = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        p.assert_running();
        let log = p.output();
        let rest = &log[log.find("http://")? + "http://".len()..];
        rest[..rest.find('/')?].parse::<SocketAddr>().ok()
    })
    .unwrap_or_else(|| panic!("gst-stream-exporter printed no address:\n{}", p.output()));
    (p, addr)
}

/// Polls `f` every `every` until it returns `Some`, for at most `limit`.
/// Starts the HLS + streammetrics pipeline of [`hls_pipeline`] in `dir`
/// with its in-process endpoint and a textfile every 500 ms, and a sidecar
/// over the textfiles; returns both processes and their addresses.
fn start_hls_pipeline_and_sidecar(dir: &Path) -> (Proc, SocketAddr, Proc, SocketAddr) {
    let textfiles = dir.join("textfiles");
    let out = dir.join("hls");
    fs::create_dir(&textfiles).unwrap();
    fs::create_dir(&out).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let pipeline = spawn_pipeline(
        dir,
        "pipeline",
        &hls_pipeline(&encode_inputs(dir), &out),
        &[
            ("GST_METRICS_ADDR", addr.to_string()),
            ("GST_METRICS_TEXTFILE_DIR", textfiles.display().to_string()),
            ("GST_METRICS_INTERVAL_MS", "500".into()),
        ],
    );
    let (sidecar, sidecar_addr) = spawn_sidecar(dir, &textfiles, "30s");
    (pipeline, addr, sidecar, sidecar_addr)
}

fn wait_for<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

// ------------------------------------------------------------------ HTTP

/// `GET path` over HTTP/1.0 (so the body is neither chunked nor kept
/// alive); returns (status, body).
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let t = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, t).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(t)).ok();
    s.set_write_timeout(Some(t)).ok();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}{path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("{addr}{path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}{path}: no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr}{path}: bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// The body of `GET /metrics`, if the endpoint answers 200.
fn scrape(addr: SocketAddr) -> Option<String> {
    match http_get(addr, "/metrics") {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

/// Percent-encodes a query parameter value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ------------------------------------------------------------------ exposition text

/// Metric families of an exposition text: name -> type, from `# TYPE` lines.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

/// Whether `text` has a sample of `metric` carrying every label of `labels`.
fn has_series(text: &str, metric: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(metric)
            .and_then(|r| r.strip_prefix('{'))
            .and_then(|r| r.split_once('}'))
            .is_some_and(|(ls, _)| {
                labels
                    .iter()
                    .all(|(k, v)| ls.split(',').any(|p| p == format!("{k}=\"{v}\"")))
            })
    })
}

/// The value of the unlabelled sample `metric`.
fn sample_value(text: &str, metric: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(metric)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The metric family an identifier of a query names: `x_bucket`, `x_sum`
/// and `x_count` name `x` when `x` is a histogram (or summary) of `known`.
fn family_of(name: &str, known: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if known
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
            {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// Identifiers `gst_[a-z0-9_]+` of a PromQL expression (not inside a
/// quoted label value).
fn gst_identifiers(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            quote = Some(c);
            i += 1;
            continue;
        }
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let preceded_by_dollar = start > 0 && b[start - 1] == b'$';
            if !preceded_by_dollar
                && word.starts_with("gst_")
                && word
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            {
                out.insert(word.to_string());
            }
            continue;
        }
        i += 1;
    }
    out
}

/// A Grafana query with its template variables replaced: `$__*` intervals
/// by `1m`, every other `$var` / `${var}` by the regex `.*` (All).
fn substitute_grafana_vars(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').unwrap_or(braced.len());
            (&braced[..end], &braced[(end + 1).min(braced.len())..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push_str(if name.starts_with("__") { "1m" } else { ".*" });
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Runs `promtool` with `args`, `stdin` fed in; returns (exit code, output).
fn promtool(args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus)");
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("promtool output");
    writer.join().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `promtool check metrics` on `text`: Ok when it prints nothing and exits 0
/// (lint findings make it print and exit 3, parse errors exit 1).
fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let (code, out) = promtool(&["check", "metrics"], text);
    if code == Some(0) && out.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics exited {code:?}:\n{out}"))
    }
}

// ------------------------------------------------------------------ JSON

/// Just enough JSON for the Prometheus API answers and the dashboard (no
/// JSON crate is in the lock file).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing data at byte {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => &[],
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// Every value under key `key` anywhere in the tree.
    fn find_all<'a>(&'a self, key: &str, out: &mut Vec<&'a Json>) {
        match self {
            Json::Obj(m) => {
                for (k, v) in m {
                    if k == key {
                        out.push(v);
                    }
                    v.find_all(key, out);
                }
            }
            Json::Arr(a) => a.iter().for_each(|v| v.find_all(key, out)),
            _ => {}
        }
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("JSON: {what} at byte {}", self.i))
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return self.err("expected ':'");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len() && b"+-0123456789.eE".contains(&self.b[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Num)
                    .map_or_else(|| self.err("bad value"), Ok)
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return self.err("expected '\"'");
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex =
                                std::str::from_utf8(self.b.get(self.i..self.i + 4).unwrap_or(b""))
                                    .ok()
                                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                            let Some(cp) = hex else {
                                return self.err("bad \\u escape");
                            };
                            self.i += 4;
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_or_else(|_| self.err("invalid UTF-8"), Ok)
    }
}

// ------------------------------------------------------------------ dashboard

fn dashboard_path() -> PathBuf {
    repo_root().join("pipelines/grafana-dashboard.json")
}

/// (title, exprs) of every panel of the dashboard, rows' nested panels included.
fn dashboard_panels(dash: &Json) -> Vec<(String, Vec<String>)> {
    let mut panels = Vec::new();
    let mut stack: Vec<&Json> = dash
        .get("panels")
        .map(|p| p.arr().iter().collect())
        .unwrap_or_default();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p.get("panels") {
            stack.extend(inner.arr());
        }
        let mut exprs = Vec::new();
        if let Some(t) = p.get("targets") {
            t.find_all("expr", &mut exprs);
        }
        let exprs: Vec<String> = exprs
            .iter()
            .filter_map(|e| e.str())
            .map(String::from)
            .collect();
        let title = p.get("title").and_then(Json::str).unwrap_or("").to_string();
        panels.push((title, exprs));
    }
    panels
}

fn load_dashboard() -> Json {
    let text = fs::read_to_string(dashboard_path()).expect("pipelines/grafana-dashboard.json");
    Json::parse(&text).unwrap_or_else(|e| panic!("grafana-dashboard.json: {e}"))
}

/// Every query expression of the dashboard (panels and template variables).
fn dashboard_exprs(dash: &Json) -> Vec<String> {
    let mut v = Vec::new();
    dash.find_all("expr", &mut v);
    v.iter().filter_map(|e| e.str()).map(String::from).collect()
}

// ------------------------------------------------------------------ tests

/// A real Prometheus 2 server scrapes a live pipeline twice, through its
/// in-process endpoint and through the sidecar, and answers instant queries
/// with the pipeline/element/stream labels plus job and instance; it also
/// evaluates every query of the Grafana dashboard without error.
#[test]
fn real_prometheus_scrapes_the_pipeline_and_the_sidecar() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let textfiles = dir.join("textfiles");
    fs::create_dir(&textfiles).unwrap();

    let p1 = free_port();
    let pipeline_addr: SocketAddr = format!("127.0.0.1:{p1}").parse().unwrap();
    let mut pipeline = spawn_pipeline(
        dir,
        "pipeline",
        VIDEO_PIPELINE,
        &[
            ("GST_METRICS_ADDR", pipeline_addr.to_string()),
            ("GST_METRICS_TEXTFILE_DIR", textfiles.display().to_string()),
            ("GST_METRICS_INTERVAL_MS", "500".into()),
        ],
    );
    let (_sidecar, sidecar_addr) = spawn_sidecar(dir, &textfiles, "30s");

    // Both endpoints show the stream before Prometheus starts.
    let labels = [
        ("pipeline", "pipeline0"),
        ("element", "m"),
        ("stream", "video"),
    ];
    for (what, addr) in [("pipeline", pipeline_addr), ("sidecar", sidecar_addr)] {
        let ok = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            pipeline.assert_running();
            scrape(addr).filter(|t| has_series(t, "gst_stream_frames_total", &labels))
        });
        assert!(
            ok.is_some(),
            "{what} endpoint {addr} never showed gst_stream_frames_total{{m}}; pipeline:\n{}",
            pipeline.output()
        );
    }

    let p3 = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{p3}").parse().unwrap();
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1m\n\
             scrape_configs:\n\
             \x20 - job_name: gst-pipeline\n    static_configs:\n      - targets: ['{pipeline_addr}']\n\
             \x20 - job_name: gst-sidecar\n    static_configs:\n      - targets: ['{sidecar_addr}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .args([
            "--storage.tsdb.retention.time=1h",
            "--query.max-concurrency=2",
            "--web.max-connections=16",
            "--log.level=warn",
        ])
        .current_dir(dir);
    let mut prom = Proc::spawn("prometheus", cmd, dir.join("prometheus.log"));

    let query = |q: &str| -> Result<Json, String> {
        let (status, body) =
            http_get(prom_addr, &format!("/api/v1/query?query={}", url_encode(q)))?;
        let json = Json::parse(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || json.get("status").and_then(Json::str) != Some("success") {
            return Err(format!("{q}: HTTP {status}: {body}"));
        }
        Ok(json)
    };

    // Wait (<= 60 s) until the series come in through both jobs.
    let mut last = String::new();
    let series = wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        prom.assert_running();
        let json = match query("gst_stream_frames_total") {
            Ok(j) => j,
            Err(e) => {
                last = e;
                return None;
            }
        };
        last = format!("{json:?}");
        let result = json.get("data")?.get("result")?.arr().to_vec();
        let jobs: BTreeSet<&str> = result
            .iter()
            .filter_map(|r| r.get("metric")?.get("job")?.str())
            .collect();
        (jobs.contains("gst-pipeline") && jobs.contains("gst-sidecar")).then_some(result)
    })
    .unwrap_or_else(|| {
        panic!(
            "Prometheus never had gst_stream_frames_total from both jobs; last answer: {last}\n\
             prometheus log:\n{}",
            prom.output()
        )
    });

    let mut seen = BTreeSet::new();
    for r in &series {
        let m = r.get("metric").expect("metric");
        let label = |k: &str| m.get(k).and_then(Json::str).unwrap_or_default().to_string();
        let job = label("job");
        let want_instance = match job.as_str() {
            "gst-pipeline" => pipeline_addr.to_string(),
            "gst-sidecar" => sidecar_addr.to_string(),
            other => panic!("unexpected job {other:?} in {m:?}"),
        };
        assert_eq!(label("__name__"), "gst_stream_frames_total", "{m:?}");
        assert_eq!(label("pipeline"), "pipeline0", "{m:?}");
        assert_eq!(label("element"), "m", "{m:?}");
        assert_eq!(label("stream"), "video", "{m:?}");
        assert_eq!(label("instance"), want_instance, "{m:?}");
        let value = r.get("value").map(Json::arr).unwrap_or_default();
        let frames: f64 = value
            .get(1)
            .and_then(Json::str)
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0);
        assert!(frames > 0.0, "no frames counted: {r:?}");
        assert!(
            seen.insert(job.clone()),
            "job {job} has more than one series: {series:?}"
        );
    }
    assert_eq!(seen.len(), 2, "{series:?}");

    // Both targets are healthy.
    let up = query("up").unwrap();
    let ups = up
        .get("data")
        .and_then(|d| d.get("result"))
        .map(Json::arr)
        .unwrap_or_default();
    assert_eq!(ups.len(), 2, "{up:?}");
    for u in ups {
        let v = u.get("value").map(Json::arr).unwrap_or_default();
        assert_eq!(
            v.get(1).and_then(Json::str),
            Some("1"),
            "target down: {u:?}"
        );
    }

    // Every dashboard query is valid PromQL for the real server; those on
    // gst_stream_* families return series once two scrapes are in.
    let dash = load_dashboard();
    for expr in dashboard_exprs(&dash) {
        let q = substitute_grafana_vars(&expr);
        if q.starts_with("label_values(") {
            continue; // Grafana variable function, not PromQL
        }
        let names = gst_identifiers(&q);
        let want_data = !names.is_empty() && names.iter().all(|n| n.starts_with("gst_stream_"));
        let mut last = String::new();
        let ok = wait_for(
            Duration::from_secs(15),
            Duration::from_millis(500),
            || match query(&q) {
                Ok(j) => {
                    let n = j.get("data")?.get("result")?.arr().len();
                    last = format!("{j:?}");
                    (!want_data || n > 0).then_some(())
                }
                Err(e) => {
                    last = e;
                    None
                }
            },
        );
        assert!(
            ok.is_some(),
            "dashboard query {q} failed or returned nothing: {last}"
        );
    }

    pipeline.kill();
    drop(prom);
}

/// `promtool check metrics` finds nothing to say about the in-process
/// endpoint and the sidecar while a pipeline with both streammetrics and
/// hlsladdersink runs (so the gst_stream_*, gst_hls_* and gst_exporter_*
/// families are all checked).
#[test]
fn promtool_accepts_every_endpoint() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut pipeline, addr, _sidecar, sidecar_addr) = start_hls_pipeline_and_sidecar(dir);

    let wanted = [
        "gst_stream_frames_total",
        "gst_stream_gop_interval_seconds",
        "gst_hls_segments_written_total",
        "gst_hls_segment_duration_seconds",
        "gst_hls_media_sequence",
    ];
    for (what, a) in [("in-process endpoint", addr), ("sidecar", sidecar_addr)] {
        let mut last = String::new();
        let text = wait_for(Duration::from_secs(40), Duration::from_millis(300), || {
            pipeline.assert_running();
            let t = scrape(a)?;
            let f = families(&t);
            let ok = wanted.iter().all(|w| f.contains_key(*w));
            last = t;
            ok.then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "{what} {a} never showed all of {wanted:?}; last scrape:\n{last}\npipeline:\n{}",
                pipeline.output()
            )
        });
        if what == "sidecar" {
            assert!(
                families(&text).contains_key("gst_exporter_textfiles"),
                "{text}"
            );
        }
        if let Err(e) = promtool_check_metrics(&text) {
            panic!("{what} {a}: {e}\nscrape:\n{text}");
        }
    }
}

/// A pipeline killed with SIGKILL leaves its textfile behind; the sidecar
/// keeps serving it until the file is `--stale-after` old and drops it no
/// later than `--stale-after` + 2 s after the kill.
#[test]
fn a_killed_pipeline_leaves_the_sidecar_within_stale_after() {
    const STALE_AFTER: Duration = Duration::from_secs(3);
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let textfiles = dir.join("textfiles");
    fs::create_dir(&textfiles).unwrap();

    let mut pipeline = spawn_pipeline(
        dir,
        "pipeline",
        VIDEO_PIPELINE,
        &[
            ("GST_METRICS_TEXTFILE_DIR", textfiles.display().to_string()),
            ("GST_METRICS_INTERVAL_MS", "200".into()),
        ],
    );
    let (_sidecar, sidecar_addr) =
        spawn_sidecar(dir, &textfiles, &STALE_AFTER.as_secs().to_string());
    let file = textfiles.join(format!("gst-broadcast-{}.prom", pipeline.pid()));
    let labels = [
        ("pipeline", "pipeline0"),
        ("element", "m"),
        ("stream", "video"),
    ];
    let present = |t: &str| has_series(t, "gst_stream_frames_total", &labels);

    let up = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        pipeline.assert_running();
        scrape(sidecar_addr).filter(|t| present(t))
    });
    assert!(
        up.is_some(),
        "the sidecar never served the pipeline's series; pipeline:\n{}",
        pipeline.output()
    );
    assert!(file.exists(), "{} missing", file.display());

    pipeline.kill(); // kill -9: no chance to clean up
    let killed = SystemTime::now();
    let right_after = scrape(sidecar_addr).expect("sidecar answers");
    assert!(
        present(&right_after),
        "series gone right after the kill, before --stale-after:\n{right_after}"
    );
    let mtime = fs::metadata(&file).and_then(|m| m.modified()).unwrap();

    let gone = wait_for(
        STALE_AFTER + Duration::from_secs(4),
        Duration::from_millis(100),
        || {
            scrape(sidecar_addr)
                .filter(|t| !present(t))
                .map(|t| (SystemTime::now(), t))
        },
    );
    let (gone_at, text) = gone.unwrap_or_else(|| {
        panic!("the killed pipeline's series were still served 7 s after the kill")
    });
    let since_kill = gone_at.duration_since(killed).unwrap_or_default();
    let since_write = gone_at.duration_since(mtime).unwrap_or_default();
    assert!(
        since_kill <= STALE_AFTER + Duration::from_secs(2),
        "series dropped {since_kill:?} after the kill, stale-after is {STALE_AFTER:?}"
    );
    // Dropped by the staleness rule, not earlier: the file's last write was
    // at least stale-after ago (100 ms of slack for clock granularity).
    assert!(
        since_write + Duration::from_millis(100) >= STALE_AFTER,
        "series dropped only {since_write:?} after the file's last write"
    );
    assert!(
        file.exists(),
        "the sidecar must skip stale files, not delete them"
    );
    assert!(
        sample_value(&text, "gst_exporter_textfiles_stale").unwrap_or(0.0) >= 1.0,
        "gst_exporter_textfiles_stale does not count the dead pipeline's file:\n{text}"
    );
}

/// Every metric the Grafana dashboard queries exists in a real scrape (the
/// pipeline's endpoint for gst_stream_* and gst_hls_*, the sidecar for
/// gst_exporter_*), the dashboard has the panels operators need, its
/// queries are valid PromQL (`promtool check rules`), and
/// pipelines/prometheus.yml passes `promtool check config`.
#[test]
fn dashboard_queries_name_real_metrics() {
    // ---- pipelines/prometheus.yml
    let prom_yml = repo_root().join("pipelines/prometheus.yml");
    let (code, out) = promtool(&["check", "config", prom_yml.to_str().unwrap()], "");
    assert_eq!(code, Some(0), "promtool check config: {out}");
    let yml = fs::read_to_string(&prom_yml).unwrap();
    for want in [
        "job_name: gst-pipeline",
        "job_name: gst-sidecar",
        "127.0.0.1:9464",
        "127.0.0.1:9465",
        "scrape_interval: 5s",
    ] {
        assert!(yml.contains(want), "prometheus.yml lacks {want:?}");
    }

    // ---- dashboard structure
    let dash = load_dashboard();
    let schema = dash.get("schemaVersion").and_then(Json::num).unwrap_or(0.0);
    assert!((36.0..=41.0).contains(&schema), "schemaVersion {schema}");
    let vars = dash
        .get("templating")
        .and_then(|t| t.get("list"))
        .map(Json::arr)
        .unwrap_or_default();
    assert!(
        vars.iter().any(
            |v| v.get("name").and_then(Json::str) == Some("DS_PROMETHEUS")
                && v.get("type").and_then(Json::str) == Some("datasource")
        ),
        "no DS_PROMETHEUS datasource variable"
    );
    let mut datasources = Vec::new();
    dash.get("panels")
        .unwrap()
        .find_all("datasource", &mut datasources);
    for ds in &datasources {
        assert_eq!(
            ds.get("uid").and_then(Json::str),
            Some("${DS_PROMETHEUS}"),
            "panel datasource {ds:?}"
        );
    }
    let mut ids = Vec::new();
    dash.get("panels").unwrap().find_all("id", &mut ids);
    let unique: BTreeSet<String> = ids.iter().map(|i| format!("{i:?}")).collect();
    assert_eq!(unique.len(), ids.len(), "duplicate panel ids");

    let panels = dashboard_panels(&dash);
    for (keyword, metric) in [
        ("gop interval", "gst_stream_gop_interval_seconds_sum"),
        ("jitter", "gst_stream_jitter_seconds"),
        ("drop ratio", "gst_stream_frames_dropped_total"),
        ("bit rate", "gst_stream_bytes_total"),
        ("hls segments", "gst_hls_segments_written_total"),
        ("media sequence", "gst_hls_media_sequence"),
        ("overrun", "gst_hls_target_duration_overruns_total"),
    ] {
        assert!(
            panels
                .iter()
                .any(|(title, exprs)| title.to_lowercase().contains(keyword)
                    && exprs.iter().any(|e| gst_identifiers(e).contains(metric))),
            "no panel titled *{keyword}* querying {metric}"
        );
    }
    let drop_panel = panels
        .iter()
        .find(|(t, _)| t.to_lowercase().contains("drop ratio"))
        .unwrap();
    assert!(
        drop_panel
            .1
            .iter()
            .any(|e| e.contains("gst_stream_frames_total")),
        "the drop ratio divides by frames seen + dropped: {drop_panel:?}"
    );

    // ---- every query is valid PromQL
    let exprs = dashboard_exprs(&dash);
    assert!(exprs.len() >= 10, "only {} queries", exprs.len());
    let mut rules = String::from("groups:\n  - name: grafana-dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules += &format!(
            "      - record: dashboard:query_{i}\n        expr: '{}'\n",
            substitute_grafana_vars(e).replace('\'', "''")
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rules_file = dir.join("dashboard-rules.yml");
    fs::write(&rules_file, &rules).unwrap();
    let (code, out) = promtool(&["check", "rules", rules_file.to_str().unwrap()], "");
    assert_eq!(
        code,
        Some(0),
        "dashboard queries are not valid PromQL: {out}\n{rules}"
    );

    let names: BTreeSet<String> = exprs.iter().flat_map(|e| gst_identifiers(e)).collect();
    assert!(names.len() >= 10, "{names:?}");

    // ---- every name exists in a real scrape
    let _g = heavy();
    let (mut pipeline, addr, _sidecar, sidecar_addr) = start_hls_pipeline_and_sidecar(dir);

    let mut missing = names.clone();
    let mut last = (String::new(), String::new());
    let mut exited = None;
    wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        if let Ok(Some(status)) = pipeline.child.try_wait() {
            exited = Some(status);
            return Some(());
        }
        let own = scrape(addr).unwrap_or_default();
        let side = scrape(sidecar_addr).unwrap_or_default();
        let (own_f, side_f) = (families(&own), families(&side));
        missing = names
            .iter()
            .filter(|n| {
                // gst_exporter_* exist only in the sidecar; the elements'
                // families must be in the pipeline's own endpoint.
                let known = if n.starts_with("gst_exporter_") {
                    &side_f
                } else {
                    &own_f
                };
                !known.contains_key(&family_of(n, known))
            })
            .cloned()
            .collect();
        last = (own, side);
        missing.is_empty().then_some(())
    });
    assert!(
        missing.is_empty(),
        "dashboard queries metrics no scrape has: {missing:?} (pipeline exited: {exited:?})\n\
         pipeline endpoint:\n{}\nsidecar:\n{}\npipeline output:\n{}",
        last.0,
        last.1,
        pipeline.output()
    );
}
