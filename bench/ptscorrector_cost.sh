#!/usr/bin/env bash
# Per-buffer CPU cost of ptscorrector against identity in the same pipeline
# (issue: goal under 150 ns per buffer), on two clean streams; the goal
# applies to each:
#   video: H.264-like, 30 fps, PTS = DTS increasing, duration set
#   audio: AAC-like, 48 kHz, 1024 samples (21.33 ms) per buffer, PTS = DTS
# Caller builds first:
#   cargo build --release -p gst-plugin-ptscorrector
# Env: BENCH_BUFFERS (default 3000000), BENCH_RUNS (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$ROOT/target/release}"
N=${BENCH_BUFFERS:-3000000}
RUNS=${BENCH_RUNS:-5}
GOAL=150
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

# Private registry, scanned by the check below, so no timed run pays for a
# plugin rescan and a plugin that fails to load is not left blacklisted in
# ~/.cache/gstreamer-1.0.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export GST_REGISTRY="$TMP/registry.bin"
gst-inspect-1.0 ptscorrector >/dev/null 2>&1 || { echo "ptscorrector not found in $GST_PLUGIN_PATH" >&2; exit 1; }

# fakesrc with format=time and a datarate gives every buffer PTS = DTS =
# bytes sent / datarate and duration = size / datarate, in a TIME segment
# from 0 (the default format=bytes gives a BYTES segment). 16-byte buffers:
#   video: datarate 480 -> 1/30 s per buffer
#   audio: datarate 750 -> 1024/48000 s per buffer
# fakesrc truncates to whole ns, so consecutive PTS differ by the duration or
# by the duration + 1 ns. None of this is a repair.
declare -A CAPS=(
    [video]="datarate=480 ! video/x-h264,stream-format=byte-stream,alignment=au,framerate=30/1"
    [audio]="datarate=750 ! audio/mpeg,mpegversion=4,stream-format=adts,rate=48000,channels=2"
)
KINDS=(video audio)
IDENT="identity"
PC="pc.sink_0 ptscorrector name=pc pc.src_0"

pipeline() { # pipeline <kind> <buffers> <middle> [fakesink options]
    echo "fakesrc num-buffers=$2 format=time sizetype=fixed sizemax=16 filltype=nothing" \
        "${CAPS[$1]} ! $3 ! fakesink sync=false ${4:-}"
}
cpu() { # cpu <kind> <middle>: user+sys seconds of one run
    local out
    # shellcheck disable=SC2046
    out=$(/usr/bin/time -f '%U %S' gst-launch-1.0 -q $(pipeline "$1" "$N" "$2") 2>&1 >/dev/null) ||
        { echo "!! run failed: $1 $2" >&2; echo "$out" | tail -5 >&2; return 1; }
    echo "$out" | tail -1 | awk '{printf "%.3f", $1 + $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Sanity checks, untimed (they also warm up the page cache):
# 1. short run: ptscorrector puts out the same buffers, with the same DTS,
#    PTS and duration, as identity, i.e. the input is clean as it sees it.
# 2. full-length run with -m: no ptscorrector-repair message at all. Full
#    length on purpose: with 3000000 buffers the video PTS pass 2^33 ticks of
#    90 kHz (95443.7 s, at buffer 2863312), which must not count as a wrap.
SHORT=300
timestamps() { # timestamps <kind> <middle>: "dts pts duration" of each buffer
    # shellcheck disable=SC2046
    gst-launch-1.0 -v $(pipeline "$1" "$SHORT" "$2" silent=false) 2>&1 |
        sed -n 's/.*fakesink0: last-message = chain .*dts: \([^,]*\), pts: \([^,]*\), duration: \([^,]*\),.*/\1 \2 \3/p'
}
SANE=1
for k in "${KINDS[@]}"; do
    timestamps "$k" "$IDENT" >"$TMP/$k.identity.ts"
    timestamps "$k" "$PC" >"$TMP/$k.pc.ts"
    ni=$(wc -l <"$TMP/$k.identity.ts"); np=$(wc -l <"$TMP/$k.pc.ts")
    if [[ $ni -ne $SHORT ]]; then
        echo "!! $k: identity put out $ni buffers of $SHORT (fakesrc pipeline broken?)" >&2; SANE=0
    elif ! diff -q "$TMP/$k.identity.ts" "$TMP/$k.pc.ts" >/dev/null; then
        echo "!! $k: ptscorrector changed a clean stream ($np buffers out of $SHORT); first differences (dts pts duration):" >&2
        diff "$TMP/$k.identity.ts" "$TMP/$k.pc.ts" | head -6 >&2; SANE=0
    fi
    # shellcheck disable=SC2046
    if ! gst-launch-1.0 -m $(pipeline "$k" "$N" "$PC") >"$TMP/$k.msgs" 2>&1; then
        echo "!! $k: full-length ptscorrector run failed:" >&2; tail -5 "$TMP/$k.msgs" >&2; SANE=0
    fi
    rep=$(grep -c 'ptscorrector-repair' "$TMP/$k.msgs" || true)
    if [[ $rep -gt 0 ]]; then
        echo "!! $k: $rep ptscorrector-repair message(s) on a clean stream, first ones:" >&2
        grep -o 'ptscorrector-repair.*' "$TMP/$k.msgs" | head -3 >&2; SANE=0
    fi
    if grep -q '(warning)' "$TMP/$k.msgs"; then # not a failure, but worth a look
        echo "note: $k: warning message(s) in the full-length run:" >&2
        grep -A1 '(warning)' "$TMP/$k.msgs" | head -4 >&2
    fi
done

declare -A RES=()
for r in $(seq 1 "$RUNS"); do
    for k in "${KINDS[@]}"; do
        RES[$k.identity]+="$(cpu "$k" "$IDENT") "
        RES[$k.pc]+="$(cpu "$k" "$PC") "
    done
done

echo "ptscorrector_cost: $N buffers, median of $RUNS runs"
FAIL=0
for k in "${KINDS[@]}"; do
    mi=$(printf '%s\n' ${RES[$k.identity]} | median)
    mp=$(printf '%s\n' ${RES[$k.pc]} | median)
    echo " $k (${CAPS[$k]#* ! })"
    echo "  identity      cpu ${mi} s   (${RES[$k.identity]% })"
    echo "  ptscorrector  cpu ${mp} s   (${RES[$k.pc]% })"
    awk -v a="$mi" -v b="$mp" -v n="$N" -v g="$GOAL" 'BEGIN {
        d = (b - a) * 1e9 / n
        printf "  ptscorrector cost over identity: %.1f ns per buffer (goal: under %d ns)\n", d, g
        printf "  ratio ptscorrector/identity: %.2f\n", b / a
        exit (d < g ? 0 : 1)
    }' || FAIL=1
done
if [[ $SANE -eq 1 ]]; then
    echo " sanity: same DTS/PTS/duration as identity on $SHORT buffers; no ptscorrector-repair message in $N"
else
    echo " sanity: FAILED (see the !! lines above): the runs did not measure the clean path"
    FAIL=1
fi
exit "$FAIL"
