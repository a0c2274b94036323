#!/usr/bin/env bash
# Runs the keyframe-alignment tests of hlsladdersink N times while another
# x264 encoder loads every core, and prints how many runs passed.
#
#   scripts/alignment-under-load.sh [RUNS]     # default 10
#
# The tests: tests/tests/hls_ladder.rs
#   sixty_second_ladder_decodes_and_is_keyframe_aligned  (3 x264 encoders, B-frames, non-live)
#   encoders_of_different_speeds_are_cut_at_the_same_pts (x264 medium beside ultrafast)
# Build first (scripts/test.sh does): cargo build --release --workspace
# Exit status: 0 when every run passed.
set -u -o pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-10}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer" >&2; exit 2; }
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/alignment-load.XXXXXX")

# The load: a 1080p x264 encode on every core, restarted until we are done.
load() {
    while true; do
        gst-launch-1.0 -q videotestsrc num-buffers=3000 pattern=snow \
            ! video/x-raw,width=1920,height=1080,framerate=30/1 \
            ! x264enc threads="$(nproc)" speed-preset=medium ! fakesink >/dev/null 2>&1 || sleep 1
    done
}
load &
LOAD_PID=$!
trap 'kill "$LOAD_PID" 2>/dev/null; pkill -P "$LOAD_PID" 2>/dev/null; wait 2>/dev/null' EXIT

cargo test --release -p gst-broadcast-e2e --test hls_ladder --no-run --locked >/dev/null 2>&1 \
    || { echo "alignment-under-load: the test binary does not build" >&2; exit 1; }
passed=0
for ((i = 1; i <= RUNS; i++)); do
    t0=$(date +%s)
    if cargo test --release -p gst-broadcast-e2e --test hls_ladder --locked -- \
        sixty_second_ladder_decodes_and_is_keyframe_aligned \
        encoders_of_different_speeds_are_cut_at_the_same_pts >"$LOG_DIR/run$i.log" 2>&1; then
        passed=$((passed + 1))
        verdict=pass
    else
        verdict="FAIL (log: $LOG_DIR/run$i.log)"
    fi
    echo "run $i/$RUNS: $verdict in $(( $(date +%s) - t0 )) s, load average $(cut -d' ' -f1 /proc/loadavg)"
done
echo "alignment under load: $passed passed, $((RUNS - passed)) failed"
[[ $passed -eq $RUNS ]]
