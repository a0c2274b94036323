//! A strict parser, writer and merger for the Prometheus text exposition
//! format 0.0.4, used by the `gst-stream-exporter` sidecar.
//!
//! [`parse`] accepts what Prometheus' own text parser accepts for the subset
//! real exporters write, and rejects a whole input on the first error (so a
//! damaged file is never served in part): every line must end with `\n`,
//! `# HELP`/`# TYPE` come before a family's samples and at most once, a
//! family's lines are contiguous, a series appears once, histogram buckets
//! carry `le` and summary quantiles carry `quantile`, label values use only
//! the escapes `\\`, `\"` and `\n`, values are floats (`NaN`, `+Inf`, `-Inf`
//! included) and timestamps are integers (milliseconds).
//!
//! No crate was used: `prometheus-parse` (the maintained candidate) skips
//! lines it cannot read instead of failing, and loses the original layout.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// The metric type of a family, from its `# TYPE` line (`untyped` without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`: samples `<name>_bucket{le=…}`, `<name>_sum`, `<name>_count`.
    Histogram,
    /// `summary`: samples `<name>{quantile=…}`, `<name>_sum`, `<name>_count`.
    Summary,
    /// `untyped`, also the type of a family without a `# TYPE` line.
    Untyped,
}

impl MetricType {
    /// The keyword used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }

    /// Whether a sample named `sample` belongs to the family `family` of this type.
    fn owns(self, family: &str, sample: &str) -> bool {
        let suffix = match sample.strip_prefix(family) {
            Some(s) => s,
            None => return false,
        };
        match self {
            MetricType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count"),
            MetricType::Summary => matches!(suffix, "" | "_sum" | "_count"),
            _ => suffix.is_empty(),
        }
    }

    /// Every sample name a family of this type may use.
    fn claimed_names(self, family: &str) -> Vec<String> {
        match self {
            MetricType::Histogram => ["", "_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
            MetricType::Summary => ["", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
            _ => vec![family.to_owned()],
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's metric name (for histograms with its `_bucket`/`_sum`/`_count` suffix).
    pub name: String,
    /// Label pairs in input order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value exactly as written (validated as a float).
    pub value: String,
    /// Optional timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The series identity: name plus labels sorted by name.
    fn series_key(&self) -> (String, Vec<(String, String)>) {
        let mut labels = self.labels.clone();
        labels.sort();
        (self.name.clone(), labels)
    }
}

/// A metric family: optional help, type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name (for histograms and summaries without suffix).
    pub name: String,
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// The type from `# TYPE`, [`MetricType::Untyped`] without one.
    pub kind: MetricType,
    /// The samples in input order.
    pub samples: Vec<Sample>,
}

/// Why an input was rejected: 1-based line number and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number (0 for errors about the whole input).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// A byte cursor over one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`); `colons` false gives a label name.
    fn name(&mut self, colons: bool) -> Option<&'a str> {
        let start = self.pos;
        let ok_start = |c: u8| {
            if colons {
                is_name_start(c)
            } else {
                c.is_ascii_alphabetic() || c == b'_'
            }
        };
        let ok = |c: u8| {
            if colons {
                is_name_char(c)
            } else {
                c.is_ascii_alphanumeric() || c == b'_'
            }
        };
        if !self.peek().is_some_and(ok_start) {
            return None;
        }
        while self.peek().is_some_and(ok) {
            self.pos += 1;
        }
        Some(&self.s[start..self.pos])
    }

    /// A run of non-blank bytes.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|c| !is_blank(c)) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A quoted label value after its opening quote, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("invalid escape \\{other} in label value"))
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated label value".into())
    }
}

fn unescape_help(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(other) => return Err(format!("invalid escape \\{other} in HELP text")),
                None => return Err("HELP text ends with a lone backslash".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn valid_value(v: &str) -> bool {
    // Rust accepts a superset of Go's ParseFloat only in signed NaN; refuse it.
    let unsigned = v.strip_prefix(['+', '-']);
    if unsigned.is_some_and(|u| u.starts_with(['n', 'N'])) {
        return false;
    }
    !v.is_empty() && v.parse::<f64>().is_ok()
}

fn parse_labels(cur: &mut Cursor<'_>) -> Result<Vec<(String, String)>, String> {
    // The opening brace has been consumed.
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        cur.skip_blanks();
        if cur.peek() == Some(b'}') {
            cur.pos += 1;
            return Ok(labels);
        }
        let name = cur
            .name(false)
            .ok_or_else(|| format!("expected a label name at {:?}", cur.rest()))?
            .to_owned();
        cur.skip_blanks();
        if cur.peek() != Some(b'=') {
            return Err(format!("expected '=' after label name {name:?}"));
        }
        cur.pos += 1;
        cur.skip_blanks();
        if cur.peek() != Some(b'"') {
            return Err(format!("expected '\"' to open the value of label {name:?}"));
        }
        cur.pos += 1;
        let value = cur.quoted()?;
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(format!("label {name:?} appears twice"));
        }
        labels.push((name, value));
        cur.skip_blanks();
        match cur.peek() {
            Some(b',') => cur.pos += 1,
            Some(b'}') => {}
            _ => return Err(format!("expected ',' or '}}' at {:?}", cur.rest())),
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let mut cur = Cursor { s: line, pos: 0 };
    cur.skip_blanks();
    let name = cur
        .name(true)
        .ok_or_else(|| format!("expected a metric name at {:?}", cur.rest()))?
        .to_owned();
    let after_name = cur.pos;
    cur.skip_blanks();
    let labels = if cur.peek() == Some(b'{') {
        cur.pos += 1;
        parse_labels(&mut cur)?
    } else {
        cur.pos = after_name;
        Vec::new()
    };
    if cur.skip_blanks() == 0 && !cur.at_end() {
        return Err(format!(
            "expected a blank before the value at {:?}",
            cur.rest()
        ));
    }
    let value = cur.token();
    if value.is_empty() {
        return Err(format!("sample {name} has no value"));
    }
    if !valid_value(value) {
        return Err(format!("invalid value {value:?} for sample {name}"));
    }
    cur.skip_blanks();
    let timestamp_ms = if cur.at_end() {
        None
    } else {
        let ts = cur.token();
        Some(
            ts.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts:?} for sample {name}"))?,
        )
    };
    cur.skip_blanks();
    if !cur.at_end() {
        return Err(format!(
            "unexpected text {:?} after sample {name}",
            cur.rest()
        ));
    }
    Ok(Sample {
        name,
        labels,
        value: value.to_owned(),
        timestamp_ms,
    })
}

/// Per-family parse state.
struct Building {
    family: Family,
    has_type: bool,
}

/// Parses a whole exposition text into its families, in input order.
///
/// # Errors
/// The first problem found (see the module docs); nothing of the input is
/// returned then.
pub fn parse(text: &str) -> Result<Vec<Family>, ParseError> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(ParseError {
            line: 0,
            message: "the last line does not end with a newline (truncated?)".into(),
        });
    }
    let mut done: Vec<Family> = Vec::new();
    let mut names_seen: HashSet<String> = HashSet::new();
    let mut current: Option<Building> = None;
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();

    for (idx, line) in text.split_terminator('\n').enumerate() {
        let err = |message: String| ParseError {
            line: idx + 1,
            message,
        };
        if line.contains('\r') {
            return Err(err("carriage return in line".into()));
        }
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let mut cur = Cursor { s: comment, pos: 0 };
            cur.skip_blanks();
            let keyword = cur.token();
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a plain comment
            }
            if cur.skip_blanks() == 0 {
                return Err(err(format!("expected a metric name after # {keyword}")));
            }
            let name = cur
                .name(true)
                .ok_or_else(|| err(format!("invalid metric name in # {keyword} line")))?
                .to_owned();
            if !cur.at_end() && cur.skip_blanks() == 0 {
                return Err(err(format!("invalid metric name in # {keyword} line")));
            }
            // Find or open the family.
            if current.as_ref().is_none_or(|b| b.family.name != name) {
                if names_seen.contains(&name) {
                    return Err(err(format!(
                        "# {keyword} for {name} after its family ended (families must be contiguous)"
                    )));
                }
                if let Some(b) = current.take() {
                    done.push(b.family);
                }
                names_seen.insert(name.clone());
                current = Some(Building {
                    family: Family {
                        name: name.clone(),
                        help: None,
                        kind: MetricType::Untyped,
                        samples: Vec::new(),
                    },
                    has_type: false,
                });
            }
            let b = current.as_mut().expect("opened above");
            if keyword == "HELP" {
                if b.family.help.is_some() {
                    return Err(err(format!("second # HELP for {name}")));
                }
                b.family.help = Some(unescape_help(cur.rest()).map_err(err)?);
            } else {
                if b.has_type {
                    return Err(err(format!("second # TYPE for {name}")));
                }
                if !b.family.samples.is_empty() {
                    return Err(err(format!("# TYPE for {name} after its samples")));
                }
                let word = cur.token();
                cur.skip_blanks();
                if !cur.at_end() {
                    return Err(err(format!("unexpected text after # TYPE {name} {word}")));
                }
                b.family.kind = MetricType::from_keyword(word)
                    .ok_or_else(|| err(format!("unknown metric type {word:?} for {name}")))?;
                b.has_type = true;
            }
            continue;
        }

        let sample = parse_sample(line).map_err(err)?;
        let belongs = current
            .as_ref()
            .is_some_and(|b| b.family.kind.owns(&b.family.name, &sample.name));
        if !belongs {
            if names_seen.contains(&sample.name) {
                return Err(err(format!(
                    "sample {} does not belong to the family before it, and its own family ended earlier (families must be contiguous)",
                    sample.name
                )));
            }
            if let Some(b) = current.take() {
                done.push(b.family);
            }
            names_seen.insert(sample.name.clone());
            current = Some(Building {
                family: Family {
                    name: sample.name.clone(),
                    help: None,
                    kind: MetricType::Untyped,
                    samples: Vec::new(),
                },
                has_type: false,
            });
        }
        let b = current.as_mut().expect("opened above");
        let label = |n: &str| sample.labels.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        match b.family.kind {
            MetricType::Histogram if sample.name.ends_with("_bucket") => {
                let le = label("le").ok_or_else(|| {
                    err(format!("histogram bucket {} has no le label", sample.name))
                })?;
                if !valid_value(le) {
                    return Err(err(format!("invalid le={le:?} in {}", sample.name)));
                }
            }
            MetricType::Summary if sample.name == b.family.name => {
                let q = label("quantile")
                    .ok_or_else(|| err(format!("summary {} has no quantile label", sample.name)))?;
                if !valid_value(q) {
                    return Err(err(format!("invalid quantile={q:?} in {}", sample.name)));
                }
            }
            _ => {}
        }
        if !series.insert(sample.series_key()) {
            return Err(err(format!("duplicate series {}", sample.name)));
        }
        b.family.samples.push(sample);
    }
    if let Some(b) = current.take() {
        done.push(b.family);
    }

    // Families must not claim each other's sample names (e.g. a histogram
    // `x` and a gauge `x_count`).
    let mut owners: HashMap<String, &str> = HashMap::new();
    for f in &done {
        for n in f.kind.claimed_names(&f.name) {
            if let Some(other) = owners.insert(n.clone(), &f.name) {
                return Err(ParseError {
                    line: 0,
                    message: format!("families {other} and {} both use the name {n}", f.name),
                });
            }
        }
    }
    Ok(done)
}

fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `family` to `out` in the text format: `# HELP` (if any),
/// `# TYPE`, then one line per sample.
pub fn write_family(family: &Family, out: &mut String) {
    use fmt::Write as _;
    if let Some(help) = &family.help {
        out.push_str("# HELP ");
        out.push_str(&family.name);
        out.push(' ');
        escape_help(help, out);
        out.push('\n');
    }
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
    for s in &family.samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(v, out);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&s.value);
        if let Some(ts) = s.timestamp_ms {
            let _ = write!(out, " {ts}");
        }
        out.push('\n');
    }
}

/// Why [`Merger::add`] skipped a family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The name is reserved (see [`Merger::reserve_prefix`]).
    Reserved(String),
    /// The family exists with another type.
    Type {
        /// The family name.
        name: String,
        /// The type already merged.
        existing: MetricType,
        /// The type of the skipped family.
        skipped: MetricType,
    },
    /// A series of the family is already present (e.g. two processes with
    /// the same pipeline, element and stream names).
    DuplicateSeries(String),
    /// A sample name of the family is used by another family.
    NameClash(String),
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Reserved(n) => write!(f, "family {n} uses a reserved name"),
            Conflict::Type {
                name,
                existing,
                skipped,
            } => write!(
                f,
                "family {name} is {skipped} here but {existing} elsewhere"
            ),
            Conflict::DuplicateSeries(n) => {
                write!(
                    f,
                    "family {n} repeats a series already read from another file"
                )
            }
            Conflict::NameClash(n) => {
                write!(f, "family {n} uses a sample name of another family")
            }
        }
    }
}

struct Merged {
    family: Family,
    series: HashSet<(String, Vec<(String, String)>)>,
}

/// Merges families from several sources into one valid exposition: one
/// `# HELP`/`# TYPE` header per family name, all samples grouped under it,
/// families in name order.
#[derive(Default)]
pub struct Merger {
    families: BTreeMap<String, Merged>,
    owners: HashMap<String, String>,
    reserved: Vec<String>,
}

impl Merger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses every family whose name starts with `prefix` (for names the
    /// caller adds itself).
    pub fn reserve_prefix(&mut self, prefix: &str) {
        self.reserved.push(prefix.to_owned());
    }

    /// Adds the families of one source (e.g. one file). A family that
    /// conflicts with what is already merged (other type, a series already
    /// present, a reserved or clashing name) is skipped whole; the others
    /// are merged. Earlier sources win. Returns the skipped families.
    pub fn add(&mut self, families: Vec<Family>) -> Vec<Conflict> {
        let mut conflicts = Vec::new();
        for family in families {
            if let Err(c) = self.add_one(family) {
                conflicts.push(c);
            }
        }
        conflicts
    }

    fn add_one(&mut self, family: Family) -> Result<(), Conflict> {
        let name = family.name.clone();
        if self.reserved.iter().any(|p| name.starts_with(p.as_str())) {
            return Err(Conflict::Reserved(name));
        }
        let claimed = family.kind.claimed_names(&name);
        if claimed
            .iter()
            .any(|n| self.owners.get(n).is_some_and(|owner| *owner != name))
        {
            return Err(Conflict::NameClash(name));
        }
        let keys: Vec<_> = family.samples.iter().map(Sample::series_key).collect();
        match self.families.get_mut(&name) {
            Some(m) => {
                if m.family.kind != family.kind {
                    return Err(Conflict::Type {
                        name,
                        existing: m.family.kind,
                        skipped: family.kind,
                    });
                }
                if keys.iter().any(|k| m.series.contains(k)) {
                    return Err(Conflict::DuplicateSeries(name));
                }
                if m.family.help.is_none() {
                    m.family.help = family.help;
                }
                m.family.samples.extend(family.samples);
                m.series.extend(keys);
            }
            None => {
                for n in claimed {
                    self.owners.insert(n, name.clone());
                }
                self.families.insert(
                    name,
                    Merged {
                        family,
                        series: keys.into_iter().collect(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Appends the merged exposition to `out`.
    pub fn write(&self, out: &mut String) {
        for m in self.families.values() {
            write_family(&m.family, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"# HELP gst_a_total Frames, with \\ and \n in help.
# TYPE gst_a_total counter
gst_a_total{element="e",pipeline="p\"q\\r\ns",stream="s"} 12
gst_a_total{element="e",pipeline="p",stream="t",} 3 1700000000000
# TYPE gst_h_seconds histogram
gst_h_seconds_bucket{le="0.5"} 1
gst_h_seconds_bucket{le="+Inf"} 2
gst_h_seconds_sum 1.25
gst_h_seconds_count 2
# a plain comment
# TYPE gst_s summary
gst_s{quantile="0.9"} NaN
gst_s_sum -Inf
gst_s_count 0
untyped_thing 1e-3

"#;

    #[test]
    fn parses_valid_text() {
        let fams = parse(GOOD).unwrap();
        let names: Vec<_> = fams.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("gst_a_total", MetricType::Counter),
                ("gst_h_seconds", MetricType::Histogram),
                ("gst_s", MetricType::Summary),
                ("untyped_thing", MetricType::Untyped),
            ]
        );
        assert_eq!(
            fams[0].help.as_deref(),
            Some("Frames, with \\ and \n in help.")
        );
        assert_eq!(fams[0].samples[0].labels[1].1, "p\"q\\r\ns");
        assert_eq!(fams[0].samples[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(fams[1].samples.len(), 4);
    }

    #[test]
    fn write_round_trips() {
        let fams = parse(GOOD).unwrap();
        let mut out = String::new();
        for f in &fams {
            write_family(f, &mut out);
        }
        assert_eq!(parse(&out).unwrap(), fams);
        assert!(out.contains(r#"pipeline="p\"q\\r\ns""#), "{out}");
        assert!(out.contains(r"# HELP gst_a_total Frames, with \\ and \n in help."));
    }

    #[test]
    fn round_trips_the_registry_output() {
        let c = crate::counter_vec("gst_expfmt_test_total", "Test \\ help.");
        c.with_label_values(&["p", "e\"x", "s\n"]).inc();
        let h = crate::histogram_vec("gst_expfmt_test_seconds", "Test.", vec![0.1, 1.0]);
        h.with_label_values(&["p", "e", "s"]).observe(0.5);
        let text = crate::render_text();
        let mut out = String::new();
        for f in &parse(&text).unwrap() {
            write_family(f, &mut out);
        }
        assert_eq!(out, text);
    }

    #[test]
    fn rejects_malformed_text() {
        let bad = [
            ("a 1", "newline"),
            ("a{b=\"c\" 1\n", "expected ','"),
            ("a{b=\"c} 1\n", "unterminated"),
            ("a{b=\"\\t\"} 1\n", "invalid escape"),
            ("a{b=c} 1\n", "expected '\"'"),
            ("a{1b=\"c\"} 1\n", "label name"),
            ("a{b=\"c\",b=\"d\"} 1\n", "twice"),
            ("a one\n", "invalid value"),
            ("a -nan\n", "invalid value"),
            ("a\n", "no value"),
            ("a 1 2 3\n", "unexpected text"),
            ("a 1 1.5\n", "timestamp"),
            ("a{b=\"c\"}1\n", "blank"),
            ("1a 1\n", "metric name"),
            ("a 1\r\n", "carriage return"),
            ("# TYPE a counter\n# TYPE a counter\na 1\n", "second # TYPE"),
            ("# HELP a x\n# HELP a y\na 1\n", "second # HELP"),
            ("a 1\n# TYPE a counter\n", "after its samples"),
            ("# TYPE a countr\na 1\n", "unknown metric type"),
            ("a 1\nb 1\na{x=\"1\"} 2\n", "contiguous"),
            ("a 1\nb 1\n# HELP a x\n", "contiguous"),
            ("a 1\na 2\n", "duplicate series"),
            (
                "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n",
                "duplicate series",
            ),
            ("# TYPE h histogram\nh_bucket 1\n", "no le"),
            ("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "invalid le"),
            ("# TYPE h histogram\nh 1\n", "ended earlier"),
            ("# TYPE s summary\ns 1\n", "no quantile"),
            (
                "# TYPE h histogram\nh_sum 1\n# TYPE h_count gauge\nh_count 1\n",
                "both use",
            ),
            ("# HELP a bad \\x escape\na 1\n", "invalid escape"),
            ("# TYPE\n", "metric name"),
        ];
        for (text, want) in bad {
            let e = parse(text).expect_err(text);
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn merges_families_from_several_sources() {
        let a = parse("# HELP x_total X.\n# TYPE x_total counter\nx_total{p=\"1\"} 1\n").unwrap();
        let b = parse(
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{p=\"2\"} 2\n# TYPE y gauge\ny 1\n",
        )
        .unwrap();
        let c = parse("# TYPE x_total gauge\nx_total{p=\"3\"} 3\n# TYPE z gauge\nz 1\n").unwrap();
        let d = parse("# TYPE x_total counter\nx_total{p=\"2\"} 9\n").unwrap();
        let e = parse(
            "# TYPE gst_exporter_z gauge\ngst_exporter_z 1\n# TYPE y_count gauge\ny_count 1\n",
        )
        .unwrap();
        let f = parse("# TYPE y histogram\ny_count 1\n").unwrap();
        let mut m = Merger::new();
        m.reserve_prefix("gst_exporter_");
        assert!(m.add(a).is_empty());
        assert!(m.add(b).is_empty());
        assert_eq!(
            m.add(c),
            [Conflict::Type {
                name: "x_total".into(),
                existing: MetricType::Counter,
                skipped: MetricType::Gauge
            }]
        );
        assert_eq!(m.add(d), [Conflict::DuplicateSeries("x_total".into())]);
        assert_eq!(m.add(e), [Conflict::Reserved("gst_exporter_z".into())]);
        assert_eq!(m.add(f), [Conflict::NameClash("y".into())]);
        let mut out = String::new();
        m.write(&mut out);
        assert_eq!(
            out,
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{p=\"1\"} 1\nx_total{p=\"2\"} 2\n\
             # TYPE y gauge\ny 1\n# TYPE y_count gauge\ny_count 1\n# TYPE z gauge\nz 1\n"
        );
        parse(&out).unwrap();
    }
}
