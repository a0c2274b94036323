#!/usr/bin/env bash
# Scale benchmark of the metrics exporter (a benchmark, not a test: it prints
# figures and compares them with the goals).
#
#  (a) in-process endpoint: exporter/examples/registry_scale.rs registers the
#      streammetrics families for BENCH_STREAMS streams (default 1000) and times
#      BENCH_SCRAPES sequential scrapes (default 500). Goal: p99 < 20 ms.
#  (b) sidecar: BENCH_FILES textfiles (default 1000, one per pipeline process,
#      27-40 series each, distinct `pipeline` label) served by
#      gst-stream-exporter and loaded with `wrk -t2 -c32 -d${BENCH_DURATION}`
#      (default 10s) while its RSS is sampled every 0.5 s.
#      Goal: no errors, memory flat (end RSS within 10% + 2 MiB of the RSS
#      after warm-up). One scrape must also pass `promtool check metrics`.
#
# Unlike the other bench scripts this one MAY BUILD: when
# target/release/examples/registry_scale or target/release/gst-stream-exporter
# is missing (or BENCH_BUILD=1) it runs
#   cargo build --release -p gst-broadcast-exporter --example registry_scale --bins
# BENCH_WRK_TIMEOUT (e.g. 10s, Prometheus' default scrape_timeout) is passed
# as wrk --timeout when set; by default wrk's own 2 s applies, and requests
# slower than that count as socket timeout errors.
# Missing wrk/promtool/curl are installed with apt-get when running as root.
#
# Exit status: 0 when every goal passes, 1 on a FAIL, 2 on a setup error.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
STREAMS=${BENCH_STREAMS:-1000}
SCRAPES=${BENCH_SCRAPES:-500}
FILES=${BENCH_FILES:-1000}
DURATION=${BENCH_DURATION:-10s}
T_START=$(date +%s.%N)

die() { echo "exporter_scale: setup error: $*" >&2; exit 2; }

need() { # need COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "$1 not found (apt-get install $2)"
    echo "exporter_scale: installing $2 ..." >&2
    apt-get install -y -q "$2" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null 2>&1; } ||
        die "cannot install $2"
    command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
}
need wrk wrk
need curl curl
need promtool prometheus

EXAMPLE=$TARGET/examples/registry_scale
SIDECAR=$TARGET/gst-stream-exporter
if [ "${BENCH_BUILD:-0}" = 1 ] || [ ! -x "$EXAMPLE" ] || [ ! -x "$SIDECAR" ]; then
    echo "exporter_scale: building (cargo build --release) ..." >&2
    (cd "$ROOT" && cargo build --release -q -p gst-broadcast-exporter --example registry_scale --bins) ||
        die "cargo build failed"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/exporter_scale.XXXXXX")
SIDECAR_PID=
WRK_PID=
cleanup() {
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null || true
    if [ -n "$SIDECAR_PID" ]; then
        kill "$SIDECAR_PID" 2>/dev/null || true
        wait "$SIDECAR_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILS=0
echo "exporter_scale: $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- (a) registry
echo
echo "== (a) in-process registry: $STREAMS streams, $SCRAPES scrapes"
"$EXAMPLE" --streams "$STREAMS" --scrapes "$SCRAPES" | tee "$TMP/registry.txt" ||
    die "registry_scale failed"
if grep -q '^  goal: .*-> PASS' "$TMP/registry.txt"; then
    A_RESULT=PASS
elif grep -q '^  goal: .*-> FAIL' "$TMP/registry.txt"; then
    A_RESULT=FAIL; FAILS=$((FAILS + 1))
else
    die "registry_scale printed no goal line"
fi

# ----------------------------------------------------------------- (b) sidecar
echo
echo "== (b) gst-stream-exporter: $FILES textfiles, wrk -t2 -c32 -d$DURATION${BENCH_WRK_TIMEOUT:+ --timeout $BENCH_WRK_TIMEOUT}"
DIR=$TMP/textfiles
mkdir "$DIR"
# One file per pipeline process: a pipeline-level gauge plus 2 or 3 streams,
# each with 3 counters, 2 gauges and a 5-bucket histogram (8 series):
# 27 or 40 series per file. Family names, HELP and TYPE are the same in every
# file and the `pipeline` label differs, so the sidecar merges without conflicts.
awk -v files="$FILES" -v dir="$DIR" 'BEGIN {
    srand(42)
    split("video audio video_alt", kinds, " ")
    nb = split("0.5 1 2 4 8", bounds, " ")
    for (i = 0; i < files; i++) {
        f = sprintf("%s/pipeline-%04d.prom", dir, i)
        ns = 2 + i % 2
        pl = sprintf("pipe%04d", i)
        print "# HELP gst_pipeline_uptime_seconds Seconds since the pipeline reached PLAYING." > f
        print "# TYPE gst_pipeline_uptime_seconds gauge" > f
        printf "gst_pipeline_uptime_seconds{pipeline=\"%s\"} %.3f\n", pl, 3600 + i * 1.5 > f
        print "# HELP gst_stream_frames_total Buffers (frames) seen." > f
        print "# TYPE gst_stream_frames_total counter" > f
        for (s = 1; s <= ns; s++)
            printf "gst_stream_frames_total{element=\"m%d\",pipeline=\"%s\",stream=\"%s\"} %d\n", s, pl, kinds[s], 100000 + int(rand() * 50000) > f
        print "# HELP gst_stream_bytes_total Payload bytes seen." > f
        print "# TYPE gst_stream_bytes_total counter" > f
        for (s = 1; s <= ns; s++)
            printf "gst_stream_bytes_total{element=\"m%d\",pipeline=\"%s\",stream=\"%s\"} %d\n", s, pl, kinds[s], 1e9 + int(rand() * 1e8) > f
        print "# HELP gst_stream_frames_dropped_total Frames missing: PTS/DTS gaps against the frame duration, RTP sequence gaps, late QoS events." > f
        print "# TYPE gst_stream_frames_dropped_total counter" > f
        for (s = 1; s <= ns; s++)
            printf "gst_stream_frames_dropped_total{element=\"m%d\",pipeline=\"%s\",stream=\"%s\"} %d\n", s, pl, kinds[s], int(rand() * 5) > f
        print "# HELP gst_stream_jitter_seconds RFC 3550 interarrival jitter of buffer arrival against PTS (or RTP timestamp), 1/16 smoothing." > f
        print "# TYPE gst_stream_jitter_seconds gauge" > f
        for (s = 1; s <= ns; s++)
            printf "gst_stream_jitter_seconds{element=\"m%d\",pipeline=\"%s\",stream=\"%s\"} %.6f\n", s, pl, kinds[s], 0.001 + rand() * 0.002 > f
        print "# HELP gst_stream_data_rate_bytes_per_second Data rate over the last one-second window of PTS (multiply by 8 for bits/s)." > f
        print "# TYPE gst_stream_data_rate_bytes_per_second gauge" > f
        for (s = 1; s <= ns; s++)
            printf "gst_stream_data_rate_bytes_per_second{element=\"m%d\",pipeline=\"%s\",stream=\"%s\"} %d\n", s, pl, kinds[s], 400000 + int(rand() * 200000) > f
        print "# HELP gst_stream_gop_interval_seconds Keyframe-to-keyframe interval by PTS, encoded video only." > f
        print "# TYPE gst_stream_gop_interval_seconds histogram" > f
        for (s = 1; s <= ns; s++) {
            lbl = sprintf("element=\"m%d\",pipeline=\"%s\",stream=\"%s\"", s, pl, kinds[s])
            n = 1000 + int(rand() * 500); c = 0
            for (b = 1; b <= nb; b++) {
                c += (b == 3) ? n : 0          # all GOPs near 2 s
                printf "gst_stream_gop_interval_seconds_bucket{%s,le=\"%s\"} %d\n", lbl, bounds[b], c > f
            }
            printf "gst_stream_gop_interval_seconds_bucket{%s,le=\"+Inf\"} %d\n", lbl, n > f
            printf "gst_stream_gop_interval_seconds_sum{%s} %.3f\n", lbl, n * 2.002 > f
            printf "gst_stream_gop_interval_seconds_count{%s} %d\n", lbl, n > f
        }
        close(f)
    }
}'
NFILES=$(find "$DIR" -name '*.prom' | wc -l)
SERIES_IN=$(cat "$DIR"/*.prom | grep -vc '^#')
[ "$NFILES" = "$FILES" ] || die "generated $NFILES files, wanted $FILES"
for f in "$DIR/pipeline-0000.prom" "$DIR/pipeline-0001.prom"; do
    promtool check metrics <"$f" >/dev/null 2>&1 || die "generated $f is not valid: $(promtool check metrics <"$f" 2>&1)"
done
echo "  textfiles: $NFILES files, $SERIES_IN series, $(du -sk "$DIR" | cut -f1) KiB on disk"

"$SIDECAR" --listen-address 127.0.0.1:0 --textfile-dir "$DIR" --stale-after 1h 2>"$TMP/sidecar.err" &
SIDECAR_PID=$!
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's|.* on http://\([^/]*\)/metrics.*|\1|p' "$TMP/sidecar.err" | head -1)
    [ -n "$ADDR" ] && break
    kill -0 "$SIDECAR_PID" 2>/dev/null || die "sidecar exited: $(cat "$TMP/sidecar.err")"
    sleep 0.05
done
[ -n "$ADDR" ] || die "sidecar printed no address: $(cat "$TMP/sidecar.err")"
URL=http://$ADDR/metrics
echo "  sidecar pid $SIDECAR_PID on $URL"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SIDECAR_PID/status" 2>/dev/null || echo 0; }
RSS_BEFORE=$(rss_kib)

# Warm-up: one full scrape, kept for the checks.
T0=$(date +%s%N)
curl -sf -o "$TMP/scrape.txt" "$URL" || die "warm-up scrape of $URL failed"
T1=$(date +%s%N)
BODY=$(stat -c %s "$TMP/scrape.txt")
SERIES_OUT=$(grep -vc '^#' "$TMP/scrape.txt")
own() { awk -v n="$1" '$1 == n {print $2}' "$TMP/scrape.txt"; }
echo "  warm-up scrape: $BODY bytes, $SERIES_OUT series, $(( (T1 - T0) / 1000000 )) ms;" \
    "gst_exporter_textfiles $(own gst_exporter_textfiles), parse errors $(own gst_exporter_textfile_parse_errors_total)," \
    "conflicts $(own gst_exporter_textfile_conflicts_total), scrape_duration_seconds $(own gst_exporter_scrape_duration_seconds)"
[ "$(own gst_exporter_textfiles)" = "$FILES" ] || die "sidecar merged $(own gst_exporter_textfiles) files, wanted $FILES"
[ "$(own gst_exporter_textfile_parse_errors_total)" = 0 ] || die "sidecar reports parse errors: $(cat "$TMP/sidecar.err")"
[ "$(own gst_exporter_textfile_conflicts_total)" = 0 ] || die "sidecar reports conflicts: $(cat "$TMP/sidecar.err")"

PROMTOOL_OUT=$(promtool check metrics <"$TMP/scrape.txt" 2>&1) && PROMTOOL_RC=0 || PROMTOOL_RC=$?
if [ "$PROMTOOL_RC" = 0 ] && [ -z "$PROMTOOL_OUT" ]; then
    P_RESULT=PASS
    echo "  promtool check metrics: clean (no output)"
else
    P_RESULT=FAIL; FAILS=$((FAILS + 1))
    echo "  promtool check metrics: exit $PROMTOOL_RC, output:"
    printf '%s\n' "$PROMTOOL_OUT" | head -20 | sed 's/^/    /'
fi

RSS_WARM=$(rss_kib)
WRK_EXTRA=()
[ -n "${BENCH_WRK_TIMEOUT:-}" ] && WRK_EXTRA=(--timeout "$BENCH_WRK_TIMEOUT")
echo "  running: wrk -t2 -c32 -d$DURATION --latency ${WRK_EXTRA[*]:+${WRK_EXTRA[*]} }$URL"
wrk -t2 -c32 -d"$DURATION" --latency "${WRK_EXTRA[@]}" "$URL" >"$TMP/wrk.txt" 2>&1 &
WRK_PID=$!
SAMPLES=()
while kill -0 "$WRK_PID" 2>/dev/null; do
    SAMPLES+=("$(rss_kib)")
    sleep 0.5
done
wait "$WRK_PID" && WRK_RC=0 || WRK_RC=$?
WRK_PID=
sleep 1 # let the last responses drain, then the end sample
RSS_END=$(rss_kib)
kill -0 "$SIDECAR_PID" 2>/dev/null || die "sidecar died under load: $(cat "$TMP/sidecar.err")"
[ "$WRK_RC" = 0 ] || die "wrk failed (exit $WRK_RC): $(cat "$TMP/wrk.txt")"

echo "  wrk output:"
sed 's/^/    /' "$TMP/wrk.txt"
RPS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$TMP/wrk.txt")
NON2XX=${NON2XX:-0}
SOCKERR=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$TMP/wrk.txt" |
    awk '{print $1 + $2 + $3 + $4}')
SOCKERR=${SOCKERR:-0}
REQS=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
[ -n "$RPS" ] && [ -n "$REQS" ] || die "cannot parse wrk output"

N=${#SAMPLES[@]}
[ "$N" -gt 0 ] || SAMPLES=("$RSS_END")
N=${#SAMPLES[@]}
MID=${SAMPLES[$((N / 2))]}
MAX=$(printf '%s\n' "${SAMPLES[@]}" "$RSS_END" | sort -n | tail -1)
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
echo "  sidecar RSS: before warm-up $(mib "$RSS_BEFORE"), after warm-up $(mib "$RSS_WARM")," \
    "middle $(mib "$MID"), end $(mib "$RSS_END") (1 s after wrk), max $(mib "$MAX") ($N samples every 0.5 s)"
# Informational: the first sample is taken as wrk starts; the next one is the
# first under load, so growth from it shows creep rather than the step up.
LOADED=${SAMPLES[1]:-${SAMPLES[0]}}
echo "  (info) growth while loaded, end vs 0.5 s into the load: $(awk -v e="$RSS_END" -v f="$LOADED" 'BEGIN {printf "%+.1f MiB", (e - f) / 1024}')"
echo "  RSS samples (MiB): $(printf '%s\n' "${SAMPLES[@]}" | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1 / 1024}')"
echo "  requests: $REQS in $DURATION, $RPS req/s (x $BODY bytes = $(awk -v r="$RPS" -v b="$BODY" 'BEGIN {printf "%.0f", r * b / 1048576}') MiB/s);" \
    "non-2xx: $NON2XX, socket errors: $SOCKERR"
LIMIT=$(awk -v w="$RSS_WARM" 'BEGIN {printf "%d", w * 1.10 + 2048}')
if [ "$NON2XX" = 0 ] && [ "$SOCKERR" = 0 ] && [ "$RSS_END" -le "$LIMIT" ]; then
    B_RESULT=PASS
else
    B_RESULT=FAIL; FAILS=$((FAILS + 1))
fi
echo "  goal: no errors, memory flat (end RSS within 10% + 2 MiB of the RSS after warm-up) -> $B_RESULT" \
    "(errors $((NON2XX + SOCKERR)); end $(mib "$RSS_END") vs limit $(mib "$LIMIT"), ratio end/warm-up" \
    "$(awk -v e="$RSS_END" -v w="$RSS_WARM" 'BEGIN {printf "%.2f", e / w}'))"

# ----------------------------------------------------------------- summary
echo
echo "== summary ($(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s)"
echo "  (a) registry p99 < 20 ms:                       $A_RESULT"
echo "  (b) sidecar no errors + memory flat:            $B_RESULT"
echo "  (b) promtool check metrics on a sidecar scrape: $P_RESULT"
[ "$FAILS" = 0 ] || exit 1
