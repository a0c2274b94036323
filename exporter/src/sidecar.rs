//! The textfile collector behind the `gst-stream-exporter` binary.
//!
//! Each scrape reads every `*.prom` file of one directory (what
//! [`crate::start_textfile`] writes), skips stale and malformed files, merges
//! the families of the rest with [`expfmt::Merger`] and adds the collector's
//! own `gst_exporter_*` metrics.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use prometheus::{Gauge, IntCounter, IntGauge, Registry};

use crate::expfmt;

/// Families whose names start with this are the collector's own; files may
/// not use them.
pub const OWN_PREFIX: &str = "gst_exporter_";

/// Files larger than this (bytes, 16 MiB) are refused as malformed.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Default of `--stale-after`: 30 s.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);

/// Parses a duration such as `30`, `30s`, `2m`, `1h`, `1m30s` or `500ms`; a
/// bare number means seconds.
///
/// # Errors
/// A message naming the input when it is empty, has an unknown unit or
/// overflows.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}: use e.g. 30, 30s, 2m, 1h or 500ms");
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(d).ok_or_else(bad)?;
    }
    Ok(total)
}

/// What one scrape of the directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Files merged into the output (possibly minus conflicting families).
    pub files_read: u64,
    /// Files skipped because their mtime is older than the stale limit.
    pub files_stale: u64,
    /// Files skipped whole because they are malformed (or too large, or not UTF-8).
    pub parse_errors: u64,
    /// Families skipped because they conflict with families of earlier files.
    pub conflicts: u64,
    /// Directory or file read errors (a file vanishing between listing and
    /// reading is not one).
    pub read_errors: u64,
    /// One line per problem, for logs.
    pub problems: Vec<String>,
}

/// Whether the collector reads a directory entry: `*.prom`, not hidden.
pub fn is_textfile_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".prom") && name.len() > ".prom".len()
}

/// Reads and merges the textfiles of `dir`: files whose mtime is more than
/// `stale_after` before `now` are skipped (`None` disables the check), files
/// are merged in name order (earlier names win conflicts), and families named
/// with [`OWN_PREFIX`] are refused. Returns the merged exposition text and
/// what was found.
pub fn collect(
    dir: &Path,
    stale_after: Option<Duration>,
    now: SystemTime,
) -> (String, ScrapeStats) {
    let mut stats = ScrapeStats::default();
    let mut merger = expfmt::Merger::new();
    merger.reserve_prefix(OWN_PREFIX);

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        stats.read_errors += 1;
                        stats.problems.push(format!("{}: {e}", dir.display()));
                        continue;
                    }
                };
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if is_textfile_name(&name) {
                    files.push((name, entry.path()));
                }
            }
        }
        Err(e) => {
            stats.read_errors += 1;
            stats.problems.push(format!("{}: {e}", dir.display()));
        }
    }
    files.sort();

    for (_, path) in files {
        let text = match read_textfile(&path, stale_after, now) {
            Ok(Some(text)) => text,
            Ok(None) => {
                stats.files_stale += 1;
                continue;
            }
            Err(FileError::Vanished) | Err(FileError::NotAFile) => continue,
            Err(FileError::Io(e)) => {
                stats.read_errors += 1;
                stats.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
            Err(FileError::Malformed(msg)) => {
                stats.parse_errors += 1;
                stats
                    .problems
                    .push(format!("{}: skipped: {msg}", path.display()));
                continue;
            }
        };
        match expfmt::parse(&text) {
            Ok(families) => {
                stats.files_read += 1;
                for c in merger.add(families) {
                    stats.conflicts += 1;
                    stats
                        .problems
                        .push(format!("{}: family skipped: {c}", path.display()));
                }
            }
            Err(e) => {
                stats.parse_errors += 1;
                stats
                    .problems
                    .push(format!("{}: skipped: {e}", path.display()));
            }
        }
    }
    let mut out = String::new();
    merger.write(&mut out);
    (out, stats)
}

enum FileError {
    Vanished,
    NotAFile,
    Io(io::Error),
    Malformed(String),
}

fn read_textfile(
    path: &Path,
    stale_after: Option<Duration>,
    now: SystemTime,
) -> Result<Option<String>, FileError> {
    let io_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            FileError::Vanished
        } else {
            FileError::Io(e)
        }
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    if let Some(limit) = stale_after {
        let mtime = meta.modified().map_err(FileError::Io)?;
        // A file from the future (clock skew) is not stale.
        if now.duration_since(mtime).is_ok_and(|age| age > limit) {
            return Ok(None);
        }
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(FileError::Malformed(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(path).map_err(io_err)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| FileError::Malformed("not UTF-8".into()))
}

/// The collector's own metrics.
struct Own {
    registry: Registry,
    textfiles: IntGauge,
    stale: IntGauge,
    parse_errors: IntCounter,
    conflicts: IntCounter,
    read_errors: IntCounter,
    duration: Gauge,
}

impl Own {
    fn new() -> Self {
        let registry = Registry::new();
        let textfiles = IntGauge::new(
            "gst_exporter_textfiles",
            "Textfiles merged into the last scrape.",
        )
        .expect("valid metric");
        let stale = IntGauge::new(
            "gst_exporter_textfiles_stale",
            "Textfiles skipped in the last scrape because they were not modified within the stale limit.",
        )
        .expect("valid metric");
        let parse_errors = IntCounter::new(
            "gst_exporter_textfile_parse_errors_total",
            "Malformed textfiles skipped whole, counted once per scrape that skipped them.",
        )
        .expect("valid metric");
        let conflicts = IntCounter::new(
            "gst_exporter_textfile_conflicts_total",
            "Metric families skipped because they conflict with the same family in another textfile (type, duplicate series, name), counted once per scrape.",
        )
        .expect("valid metric");
        let read_errors = IntCounter::new(
            "gst_exporter_textfile_read_errors_total",
            "Errors reading the textfile directory or a file in it.",
        )
        .expect("valid metric");
        let duration = Gauge::new(
            "gst_exporter_scrape_duration_seconds",
            "Time taken to read and merge the textfiles in the last scrape, in seconds.",
        )
        .expect("valid metric");
        for c in [
            Box::new(textfiles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(stale.clone()),
            Box::new(parse_errors.clone()),
            Box::new(conflicts.clone()),
            Box::new(read_errors.clone()),
            Box::new(duration.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Own {
            registry,
            textfiles,
            stale,
            parse_errors,
            conflicts,
            read_errors,
            duration,
        }
    }
}

/// A textfile collector for one directory; [`Sidecar::scrape`] renders one
/// `/metrics` body.
pub struct Sidecar {
    dir: PathBuf,
    stale_after: Option<Duration>,
    own: Own,
    /// Problems already logged, so a file that stays broken is logged once.
    logged: Mutex<HashSet<String>>,
    log: bool,
    /// The last merge and the directory fingerprint it was made from.
    cache: Mutex<Option<(Fingerprint, String, ScrapeStats)>>,
}

/// Name, mtime, size and staleness of every textfile of the directory: when
/// it is unchanged, so is the merged text, and a scrape costs one `stat` per
/// file instead of reading, parsing and merging every file again.
type Fingerprint = Vec<(String, Option<SystemTime>, u64, bool)>;

/// The fingerprint of `dir` at `now`; `None` when the directory cannot be
/// listed (the scrape then reads it and reports the error).
fn fingerprint(dir: &Path, stale_after: Option<Duration>, now: SystemTime) -> Option<Fingerprint> {
    let mut fp: Fingerprint = Vec::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_textfile_name(&name) {
            continue;
        }
        let meta = entry.metadata().ok()?;
        let mtime = meta.modified().ok();
        let stale = match (stale_after, mtime) {
            (Some(limit), Some(m)) => now.duration_since(m).is_ok_and(|age| age > limit),
            _ => false,
        };
        fp.push((name, mtime, meta.len(), stale));
    }
    fp.sort();
    Some(fp)
}

impl Sidecar {
    /// A collector for `dir`. Files not modified within `stale_after` are
    /// skipped (`Duration::ZERO` disables the check); [`DEFAULT_STALE_AFTER`]
    /// is 30 s. With `log`, each new problem (malformed file, conflict, read
    /// error) is printed once to stderr.
    pub fn new(dir: PathBuf, stale_after: Duration, log: bool) -> Self {
        Sidecar {
            dir,
            stale_after: (!stale_after.is_zero()).then_some(stale_after),
            own: Own::new(),
            logged: Mutex::new(HashSet::new()),
            log,
            cache: Mutex::new(None),
        }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory now and returns the exposition text: the merged
    /// families of the fresh, well-formed files followed by the collector's
    /// own metrics (`gst_exporter_textfiles`, `gst_exporter_textfiles_stale`,
    /// `gst_exporter_textfile_parse_errors_total`,
    /// `gst_exporter_textfile_conflicts_total`,
    /// `gst_exporter_textfile_read_errors_total`,
    /// `gst_exporter_scrape_duration_seconds`).
    pub fn scrape(&self) -> String {
        let started = Instant::now();
        let now = SystemTime::now();
        let fp = fingerprint(&self.dir, self.stale_after, now);
        let (mut text, stats) = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match (&*cache, &fp) {
                (Some((cached_fp, text, stats)), Some(fp)) if cached_fp == fp => {
                    (text.clone(), stats.clone())
                }
                _ => {
                    let (text, stats) = collect(&self.dir, self.stale_after, now);
                    *cache = fp.map(|fp| (fp, text.clone(), stats.clone()));
                    (text, stats)
                }
            }
        };
        let own = &self.own;
        own.textfiles.set(stats.files_read as i64);
        own.stale.set(stats.files_stale as i64);
        own.parse_errors.inc_by(stats.parse_errors);
        own.conflicts.inc_by(stats.conflicts);
        own.read_errors.inc_by(stats.read_errors);
        own.duration.set(started.elapsed().as_secs_f64());
        if self.log {
            let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
            let now: HashSet<String> = stats.problems.iter().cloned().collect();
            for p in &stats.problems {
                if !logged.contains(p) {
                    eprintln!("gst-stream-exporter: {p}");
                }
            }
            *logged = now;
        }
        prometheus::TextEncoder::new()
            .encode_utf8(&own.registry.gather(), &mut text)
            .expect("text encoding into a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "5x", "1.5s", "-3", "m5", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn textfile_names() {
        assert!(is_textfile_name("gst-broadcast-12.prom"));
        assert!(!is_textfile_name(".gst-broadcast-12.prom"));
        assert!(!is_textfile_name(".x.prom.1.2.tmp"));
        assert!(!is_textfile_name("x.prom.tmp"));
        assert!(!is_textfile_name(".prom"));
        assert!(!is_textfile_name("notes.txt"));
    }

    #[test]
    fn missing_directory_is_a_read_error() {
        let (text, stats) = collect(Path::new("/nonexistent/dir"), None, SystemTime::now());
        assert_eq!(text, "");
        assert_eq!(stats.read_errors, 1);
    }

    #[test]
    fn non_utf8_and_truncated_files_are_parse_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.prom"), b"a 1\n\xff\n").unwrap();
        std::fs::write(dir.path().join("b.prom"), b"# TYPE b gauge\nb 1\nb{x=\"").unwrap();
        std::fs::write(dir.path().join("c.prom"), b"# TYPE c gauge\nc 1\n").unwrap();
        std::fs::create_dir(dir.path().join("d.prom")).unwrap();
        let (text, stats) = collect(dir.path(), None, SystemTime::now());
        assert_eq!(text, "# TYPE c gauge\nc 1\n");
        assert_eq!((stats.files_read, stats.parse_errors), (1, 2));
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn write(path: &Path, value: u64) {
        std::fs::write(
            path,
            format!("# TYPE gst_cache_test_total counter\ngst_cache_test_total{{stream=\"a\"}} {value}\n"),
        )
        .unwrap();
    }

    #[test]
    fn the_cached_merge_follows_every_change_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.prom");
        write(&file, 1);
        let sidecar = Sidecar::new(dir.path().to_path_buf(), Duration::from_secs(30), false);
        assert!(sidecar
            .scrape()
            .contains("gst_cache_test_total{stream=\"a\"} 1\n"));
        // Same content twice: served from the cache, still correct.
        assert!(sidecar
            .scrape()
            .contains("gst_cache_test_total{stream=\"a\"} 1\n"));
        // A rewrite (new size) and a rewrite of the same size with a new
        // mtime both show up on the next scrape.
        write(&file, 22);
        assert!(sidecar
            .scrape()
            .contains("gst_cache_test_total{stream=\"a\"} 22\n"));
        write(&file, 33);
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(1))
            .unwrap();
        assert!(sidecar
            .scrape()
            .contains("gst_cache_test_total{stream=\"a\"} 33\n"));
        // A file that goes stale without changing leaves the output.
        f.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        let text = sidecar.scrape();
        assert!(!text.contains("gst_cache_test_total{"), "{text}");
        // A new file joins, a deleted one leaves.
        write(&dir.path().join("b.prom"), 5);
        std::fs::remove_file(&file).unwrap();
        let text = sidecar.scrape();
        assert!(
            text.contains("gst_cache_test_total{stream=\"a\"} 5\n"),
            "{text}"
        );
    }
}
