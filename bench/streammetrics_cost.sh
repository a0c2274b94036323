#!/usr/bin/env bash
# Per-buffer CPU cost of streammetrics against identity in the same pipeline
# (issue: goal under 100 ns per buffer). Caller builds first:
#   cargo build --release -p gst-plugin-streammetrics
# Env: BENCH_BUFFERS (default 3000000), BENCH_RUNS (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$ROOT/target/release}"
N=${BENCH_BUFFERS:-3000000}
RUNS=${BENCH_RUNS:-5}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
gst-inspect-1.0 streammetrics >/dev/null 2>&1 || { echo "streammetrics not found in $GST_PLUGIN_PATH" >&2; exit 1; }

# Timestamped H.264-like buffers (30 per second of PTS, 16 bytes each):
# the element takes its full path (timestamps, gaps, jitter, bit rate).
SRC="fakesrc num-buffers=$N format=time sizetype=fixed sizemax=16 filltype=nothing datarate=480 \
 ! video/x-h264,stream-format=byte-stream,alignment=au,framerate=30/1"

cpu() { # prints user+sys seconds of one run of element $1
    /usr/bin/time -f '%U %S' gst-launch-1.0 -q $SRC ! $1 ! fakesink sync=false 2>&1 >/dev/null \
        | tail -1 | awk '{printf "%.3f", $1 + $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ident=(); metr=()
for r in $(seq 1 "$RUNS"); do
    ident+=("$(cpu identity)")
    metr+=("$(cpu 'streammetrics stream-name=bench')")
done
mi=$(printf '%s\n' "${ident[@]}" | median)
mm=$(printf '%s\n' "${metr[@]}" | median)
echo "streammetrics_cost: $N buffers, median of $RUNS runs"
echo "  identity       cpu ${mi} s   (${ident[*]})"
echo "  streammetrics  cpu ${mm} s   (${metr[*]})"
awk -v a="$mi" -v b="$mm" -v n="$N" 'BEGIN {
    d = (b - a) * 1e9 / n
    printf "  streammetrics cost over identity: %.1f ns per buffer (goal: under 100 ns)\n", d
    printf "  ratio streammetrics/identity: %.2f\n", b / a
    exit (d < 100 ? 0 : 1)
}'
