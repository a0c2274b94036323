//! Starting the ways out of the process: HTTP endpoint, textfile writer, and
//! both from the environment.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Duration;

use crate::{http, render_text};

/// Environment variable naming the address of the in-process HTTP endpoint,
/// e.g. `127.0.0.1:9464` (a host name such as `localhost:9464` is resolved and
/// its first address used).
pub const ENV_ADDR: &str = "GST_METRICS_ADDR";
/// Environment variable naming the directory of the textfile writer.
pub const ENV_TEXTFILE_DIR: &str = "GST_METRICS_TEXTFILE_DIR";
/// Environment variable giving the textfile write interval in milliseconds
/// (default 5000, at least 100).
pub const ENV_INTERVAL_MS: &str = "GST_METRICS_INTERVAL_MS";

/// The address callers should use when none is configured: loopback only,
/// port 9464. Other interfaces are used only when an address is passed
/// explicitly.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
/// Default textfile write interval: 5 s.
pub const DEFAULT_TEXTFILE_INTERVAL: Duration = Duration::from_millis(5000);
/// Shortest textfile write interval: 100 ms; shorter requests are raised to it.
pub const MIN_TEXTFILE_INTERVAL: Duration = Duration::from_millis(100);

/// Requested address → bound address of every endpoint started by [`start_http`].
static HTTP_SERVERS: LazyLock<Mutex<HashMap<SocketAddr, SocketAddr>>> =
    LazyLock::new(Default::default);

/// Starts the in-process HTTP endpoint on `addr` and returns the bound
/// address (the real port when port 0 is requested).
///
/// Serves `GET /metrics` ([`render_text`], `Content-Type:
/// text/plain; version=0.0.4; charset=utf-8`) and `GET /healthz` (`ok`) with
/// the limits of [`http::Limits::default`] (5 s to send a request head,
/// 8 KiB heads, 64 connections, 30 s per connection) on a thread of its own
/// that lives as long as the process.
///
/// At most one server is started per requested address: calling again with
/// the same `addr` (or with the returned address) returns the same bound
/// address. `addr` is used as given; callers default to
/// [`DEFAULT_HTTP_ADDR`] (`127.0.0.1:9464`, loopback only) and bind other
/// interfaces only when the user asks.
///
/// # Errors
/// The bind error (e.g. `AddrInUse`, `PermissionDenied`,
/// `AddrNotAvailable`) or a failure to start the server thread; nothing is
/// remembered then, so a later call tries again.
pub fn start_http(addr: SocketAddr) -> io::Result<SocketAddr> {
    // Another plugin's copy of this crate may serve it already; its
    // endpoint renders every registry of the process.
    if let Some(bound) = crate::hub::served(addr) {
        return Ok(bound);
    }
    let mut servers = HTTP_SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(bound) = servers.get(&addr) {
        return Ok(*bound);
    }
    let server = http::serve(addr, http::Limits::default(), render_text)?;
    let bound = server.local_addr();
    servers.insert(addr, bound);
    servers.insert(bound, bound);
    crate::hub::add_served(addr, bound);
    // Dropping the handle detaches the thread; it serves until the process exits.
    drop(server);
    Ok(bound)
}

/// The textfile written by [`start_textfile`]: `gst-broadcast-<pid>.prom`.
pub fn textfile_name() -> String {
    format!("gst-broadcast-{}.prom", std::process::id())
}

static TEXTFILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Starts a background thread (`gst-metrics-textfile`) that writes
/// [`render_text`] atomically to `<dir>/gst-broadcast-<pid>.prom` every
/// `interval`, and returns that path.
///
/// `dir` is created if missing. The first write happens before this returns.
/// `interval` is raised to [`MIN_TEXTFILE_INTERVAL`] (100 ms) if shorter;
/// [`DEFAULT_TEXTFILE_INTERVAL`] (5 s) is the usual choice. Each write goes
/// to a hidden temporary file in `dir` that is then renamed over the target,
/// so readers (the `gst-stream-exporter` sidecar, node_exporter's textfile
/// collector) never see a partial file. Write errors in the background are
/// printed once to stderr (and once more when writing recovers). On process
/// exit the file is left behind; readers drop it once it is stale.
///
/// Only one writer runs per process: later calls return the path of the
/// running writer and ignore their arguments.
///
/// # Errors
/// Creating `dir` or the first write failed (e.g. `PermissionDenied`,
/// `NotFound` for a path under a missing or read-only mount); no writer is
/// started then, so a later call tries again.
pub fn start_textfile(dir: PathBuf, interval: Duration) -> io::Result<PathBuf> {
    let mut running = TEXTFILE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = &*running {
        return Ok(path.clone());
    }
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(textfile_name());
    write_textfile_now(&path)?;
    let interval = interval.max(MIN_TEXTFILE_INTERVAL);
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("gst-metrics-textfile".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                std::thread::sleep(interval);
                match write_textfile_now(&thread_path) {
                    Ok(()) if failing => {
                        failing = false;
                        eprintln!(
                            "gst-broadcast: writing metrics textfile {} works again",
                            thread_path.display()
                        );
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        eprintln!(
                            "gst-broadcast: cannot write metrics textfile {}: {e}",
                            thread_path.display()
                        );
                    }
                    Err(_) => {}
                }
            }
        })?;
    *running = Some(path.clone());
    Ok(path)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes [`render_text`] to `path` now, atomically: the text goes to a
/// hidden temporary file (`.<name>.<pid>.<n>.tmp`) in the same directory,
/// which is then renamed over `path`. Readers see the old or the new file,
/// never a partial one. Not synced to disk (a crash may lose the last write,
/// never tear it).
///
/// # Errors
/// `InvalidInput` if `path` has no file name; otherwise the error of
/// creating, writing or renaming the temporary file (which is removed on
/// failure).
pub fn write_textfile_now(path: &Path) -> io::Result<()> {
    write_atomically(path, render_text().as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What [`start_from_env`] started. `None`: the variable was unset or empty;
/// `Some(Err(message))`: starting failed (the message was printed to stderr).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvStart {
    /// From `GST_METRICS_ADDR`: the bound address of the HTTP endpoint.
    pub http: Option<Result<SocketAddr, String>>,
    /// From `GST_METRICS_TEXTFILE_DIR`: the path of the textfile being written.
    pub textfile: Option<Result<PathBuf, String>>,
    /// The textfile write interval used (from `GST_METRICS_INTERVAL_MS`,
    /// default 5 s, at least 100 ms); `None` when no textfile was requested.
    pub interval: Option<Duration>,
}

static ENV_START: OnceLock<EnvStart> = OnceLock::new();

/// Starts what the environment asks for, once per process; later calls
/// return the first call's result.
///
/// * `GST_METRICS_ADDR` (e.g. `127.0.0.1:9464`): [`start_http`] on it.
/// * `GST_METRICS_TEXTFILE_DIR`: [`start_textfile`] in that directory, every
///   `GST_METRICS_INTERVAL_MS` milliseconds (default 5000, at least 100).
///
/// Never panics and never fails the caller: every problem (unparsable
/// address, `cannot listen on 127.0.0.1:9464: Address already in use`,
/// unwritable directory, bad interval) is printed once to stderr, prefixed
/// `gst-broadcast:`, and reported in the returned [`EnvStart`].
pub fn start_from_env() -> EnvStart {
    ENV_START
        .get_or_init(|| {
            // GStreamer's plugin scanner loads plugins with the caller's
            // environment only to read their metadata: it must not take the
            // port or leave a textfile behind.
            let scanner = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .is_some_and(|n| n.starts_with("gst-plugin-scanner"));
            if scanner {
                return EnvStart::default();
            }
            crate::hub::join();
            // One plugin's copy starts the outputs for the whole process.
            if crate::hub::claim_env_start() {
                start_from(|key| std::env::var_os(key))
            } else {
                EnvStart::default()
            }
        })
        .clone()
}

fn non_empty(v: Option<OsString>) -> Option<OsString> {
    v.filter(|v| !v.is_empty())
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{value:?} resolves to no address")),
        Err(e) => Err(format!(
            "{value:?} is not an address like 127.0.0.1:9464: {e}"
        )),
    }
}

fn parse_interval(value: Option<OsString>) -> Result<Duration, String> {
    let Some(value) = non_empty(value) else {
        return Ok(DEFAULT_TEXTFILE_INTERVAL);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms).max(MIN_TEXTFILE_INTERVAL)),
        Err(e) => Err(format!(
            "{ENV_INTERVAL_MS}={text:?} is not a number of milliseconds ({e}); using {} ms",
            DEFAULT_TEXTFILE_INTERVAL.as_millis()
        )),
    }
}

/// [`start_from_env`] with the variables read through `get` (for tests).
pub(crate) fn start_from(get: impl Fn(&str) -> Option<OsString>) -> EnvStart {
    let mut started = EnvStart::default();

    if let Some(value) = non_empty(get(ENV_ADDR)) {
        let value = value.to_string_lossy().trim().to_owned();
        let result = parse_addr(&value)
            .map_err(|e| format!("{ENV_ADDR}: {e}"))
            .and_then(|addr| start_http(addr).map_err(|e| format!("cannot listen on {addr}: {e}")));
        if let Err(msg) = &result {
            eprintln!("gst-broadcast: {msg}");
        }
        started.http = Some(result);
    }

    if let Some(dir) = non_empty(get(ENV_TEXTFILE_DIR)) {
        let interval = parse_interval(get(ENV_INTERVAL_MS)).unwrap_or_else(|msg| {
            eprintln!("gst-broadcast: {msg}");
            DEFAULT_TEXTFILE_INTERVAL
        });
        let dir = PathBuf::from(dir);
        let result = start_textfile(dir.clone(), interval)
            .map_err(|e| format!("cannot write metrics textfile in {}: {e}", dir.display()));
        if let Err(msg) = &result {
            eprintln!("gst-broadcast: {msg}");
        }
        started.textfile = Some(result);
        started.interval = Some(interval);
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_starts_nothing() {
        assert_eq!(start_from(|_| None), EnvStart::default());
        assert_eq!(start_from(|_| Some(OsString::new())), EnvStart::default());
    }

    #[test]
    fn bad_address_is_reported_not_panicked() {
        let got = start_from(|k| (k == ENV_ADDR).then(|| "not an address".into()));
        let err = got.http.unwrap().unwrap_err();
        assert!(err.contains("GST_METRICS_ADDR"), "{err}");
        assert!(got.textfile.is_none());
    }

    #[test]
    fn address_in_use_is_reported() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let got = start_from(|k| (k == ENV_ADDR).then(|| addr.clone().into()));
        let err = got.http.unwrap().unwrap_err();
        assert!(
            err.starts_with(&format!("cannot listen on {addr}: ")),
            "{err}"
        );
    }

    #[test]
    fn interval_parsing() {
        assert_eq!(parse_interval(None), Ok(DEFAULT_TEXTFILE_INTERVAL));
        assert_eq!(
            parse_interval(Some("250".into())),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_interval(Some("5".into())), Ok(MIN_TEXTFILE_INTERVAL));
        assert!(parse_interval(Some("5s".into())).is_err());
    }

    #[test]
    fn atomic_write_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.prom");
        write_atomically(&path, b"a 1\n").unwrap();
        write_atomically(&path, b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.prom"]);
        assert!(write_atomically(&dir.path().join("missing/x.prom"), b"").is_err());
    }
}
