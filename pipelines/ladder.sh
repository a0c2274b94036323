#!/usr/bin/env bash
# Three-rendition H.264/AAC HLS ladder into hlsladdersink, via gst-launch-1.0.
#
# Usage:
#   pipelines/ladder.sh [--input FILE_OR_URI] [--out DIR] [--target-duration S]
#                       [--playlist-type live|event|vod] [--duration SECONDS]
#                       [--live|--no-live] [--no-audio] [--dry-run] [--fake-sink]
#
#   --input X          media file (path or URI) decoded with uridecodebin3
#                      (uridecodebin on GStreamer 1.22 intermittently never
#                      reaches EOS in this tee'd graph, with any sink).
#                      Default: built-in live test sources (SMPTE bars with a
#                      clock overlay + 440 Hz sine).
#   --out DIR          output directory (default ./out); DIR/index.m3u8 is the
#                      multivariant playlist, DIR/v0 DIR/v1 DIR/v2 the renditions.
#   --target-duration  segment target duration in whole seconds (default 6).
#   --playlist-type    live|event|vod. Default: live for real-time input,
#                      event for non-live input (a file encodes faster than
#                      real time; a sliding live window would delete segments).
#   --duration N       stop cleanly after N seconds (EOS, playlists get
#                      EXT-X-ENDLIST). Without it: run until Ctrl-C / SIGTERM
#                      (also EOS), or until the input file ends.
#   --live / --no-live Test sources are live by default (--no-live: generate
#                      as fast as possible). A file is non-live by default
#                      (--live: pace it in real time with clocksync).
#   --no-audio         no audio rendition. With --input this is detected with
#                      ffprobe when available.
#   --dry-run          only print the pipeline.
#   --fake-sink        replace hlsladdersink with fakesinks (encoder benchmark).
#
# hlsladdersink must be findable: export GST_PLUGIN_PATH=<repo>/target/release
# (cargo build --release -p gst-plugin-hlsladder) or install it with meson.
#
# Stopping: SIGINT, SIGTERM and SIGHUP all send exactly one SIGINT to
# gst-launch-1.0 -e, which then pushes EOS so the sink finalises the
# playlists. A second signal (after 2 s) or EOS taking longer than
# $LADDER_EOS_TIMEOUT seconds (default 30) kills gst-launch-1.0.
set -euo pipefail

# A non-interactive shell starts background jobs with SIGINT ignored, and bash
# cannot trap a signal that was ignored on entry. Re-exec once with default
# signal dispositions so `kill -INT` works however this script was started.
if [ -z "${_LADDER_SIGRESET:-}" ] && env --default-signal=INT true 2>/dev/null; then
    _LADDER_SIGRESET=1 exec env --default-signal=INT,TERM,HUP "$BASH" "$0" "$@"
fi
unset _LADDER_SIGRESET

die() { echo "ladder.sh: $*" >&2; exit 2; }

INPUT=""
OUT="./out"
TARGET_DURATION=6
PLAYLIST_TYPE=""
DURATION=""
LIVE=""
AUDIO=auto
DRY_RUN=0
FAKE_SINK=0
# streammetrics per rendition when the element is available (gst-plugin-streammetrics).
METRICS=0
EOS_TIMEOUT="${LADDER_EOS_TIMEOUT:-30}"

need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
    case "$1" in
        --input)            need_arg "$@"; INPUT="$2"; shift 2 ;;
        --input=*)          INPUT="${1#*=}"; shift ;;
        --out)              need_arg "$@"; OUT="$2"; shift 2 ;;
        --out=*)            OUT="${1#*=}"; shift ;;
        --target-duration)  need_arg "$@"; TARGET_DURATION="$2"; shift 2 ;;
        --target-duration=*) TARGET_DURATION="${1#*=}"; shift ;;
        --playlist-type)    need_arg "$@"; PLAYLIST_TYPE="$2"; shift 2 ;;
        --playlist-type=*)  PLAYLIST_TYPE="${1#*=}"; shift ;;
        --duration)         need_arg "$@"; DURATION="$2"; shift 2 ;;
        --duration=*)       DURATION="${1#*=}"; shift ;;
        --live)             LIVE=1; shift ;;
        --no-live)          LIVE=0; shift ;;
        --no-audio)         AUDIO=0; shift ;;
        --dry-run)          DRY_RUN=1; shift ;;
        --fake-sink)        FAKE_SINK=1; shift ;;
        -h|--help)          sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *)                  die "unknown argument: $1 (see --help)" ;;
    esac
done

[[ "$TARGET_DURATION" =~ ^[1-9][0-9]*$ ]] || die "--target-duration must be a whole number of seconds >= 1"
[ -z "$DURATION" ] || [[ "$DURATION" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration must be a number of seconds"
[[ "$EOS_TIMEOUT" =~ ^[0-9]+$ ]] || die "LADDER_EOS_TIMEOUT must be whole seconds"

# Live by default for the test sources, non-live by default for a file.
if [ -z "$LIVE" ]; then
    if [ -n "$INPUT" ]; then LIVE=0; else LIVE=1; fi
fi
if [ -z "$PLAYLIST_TYPE" ]; then
    if [ "$LIVE" = 1 ]; then PLAYLIST_TYPE=live; else PLAYLIST_TYPE=event; fi
fi
case "$PLAYLIST_TYPE" in live|event|vod) ;; *) die "--playlist-type must be live, event or vod" ;; esac

OUT_ABS="$(realpath -m -- "$OUT")"

# ---------------------------------------------------------------- input
URI=""
if [ -n "$INPUT" ]; then
    PROBE="$INPUT"
    if [[ "$INPUT" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; then
        URI="$INPUT"
        if [[ "$INPUT" == file://* ]]; then
            PROBE="$(python3 -c 'import sys,urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).path))' "$INPUT")"
        fi
    else
        [ -f "$INPUT" ] || die "input file not found: $INPUT"
        URI="$(python3 -c 'import pathlib,sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$INPUT")"
    fi
    if [ "$AUDIO" = auto ]; then
        # uridecodebin + gst-launch delayed linking cannot express "audio if
        # present": an audio branch with no audio stream would never get data
        # or EOS. So probe the input first.
        if command -v ffprobe >/dev/null 2>&1 &&
           streams="$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 -- "$PROBE" 2>/dev/null)"; then
            grep -qx video <<<"$streams" || die "no video stream found in $INPUT"
            if grep -qx audio <<<"$streams"; then AUDIO=1; else
                AUDIO=0; echo "ladder.sh: $INPUT has no audio stream, producing video-only renditions" >&2
            fi
        else
            AUDIO=1
            echo "ladder.sh: could not probe $INPUT (ffprobe); assuming it has audio (use --no-audio if not)" >&2
        fi
    fi
else
    [ "$AUDIO" = auto ] && AUDIO=1
fi

# ---------------------------------------------------------------- pipeline
# P holds gst-launch-1.0 arguments; the token $NL only marks where the
# printed command breaks lines and is dropped before running.
NL=$'\n'
P=(-e)
add() { P+=("$@"); }

if [ "$LIVE" = 1 ]; then IS_LIVE=true; else IS_LIVE=false; fi

if [ "$FAKE_SINK" = 1 ]; then
    sinkpad() { echo "fakesink" "name=fake_$1" "sync=false" "async=false"; }
else
    add hlsladdersink name=s "output-directory=$OUT_ABS" \
        "target-duration=$TARGET_DURATION" "playlist-type=$PLAYLIST_TYPE" "$NL"
    sinkpad() { echo "s.$1"; }
fi

# Raw video (I420, square pixels) arrives at tee t.
if [ -z "$URI" ]; then
    add videotestsrc is-live=$IS_LIVE pattern=smpte !
    add video/x-raw,format=I420,width=1280,height=720,framerate=30/1,pixel-aspect-ratio=1/1 !
    if gst-inspect-1.0 timeoverlay >/dev/null 2>&1; then
        add timeoverlay !
    else
        echo "ladder.sh: timeoverlay not available (Debian package gstreamer1.0-x), no clock overlay" >&2
    fi
    add tee name=t "$NL"
else
    add uridecodebin3 name=d "uri=$URI" "$NL"
    add d. ! video/x-raw ! queue !
    [ "$LIVE" = 1 ] && add clocksync !
    add videoconvert ! videorate max-rate=30 ! video/x-raw,format=I420 ! tee name=t "$NL"
fi

gst-inspect-1.0 streammetrics >/dev/null 2>&1 && METRICS=1

# name:width:height:kbit/s -- one hlsladdersink variant each (v0, v1, v2).
RENDITIONS=(720p:1280:720:3000 480p:854:480:1500 360p:640:360:800)
i=0
for r in "${RENDITIONS[@]}"; do
    IFS=: read -r _name w h kbps <<<"$r"
    # queue first so scaling + encoding of each rendition gets its own thread.
    add t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=1000000000 !
    add videoscale ! "video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1" !
    add x264enc "bitrate=$kbps" key-int-max=60 speed-preset=superfast tune=zerolatency \
        option-string=scenecut=0 !
    add h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au !
    # GOP interval, jitter, drops and bit rate per rendition (GST_METRICS_ADDR).
    [ "$METRICS" = 1 ] && add streammetrics "name=metrics_v$i" "stream-name=v$i" !
    # shellcheck disable=SC2046
    add $(sinkpad "video_$i") "$NL"
    i=$((i + 1))
done

if [ "$AUDIO" = 1 ]; then
    if [ -z "$URI" ]; then
        add audiotestsrc is-live=$IS_LIVE wave=sine !
    else
        add d. ! audio/x-raw ! queue !
        [ "$LIVE" = 1 ] && add clocksync !
    fi
    add audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 !
    add avenc_aac bitrate=128000 ! aacparse ! queue !
    [ "$METRICS" = 1 ] && add streammetrics name=metrics_audio stream-name=audio !
    # shellcheck disable=SC2046
    add $(sinkpad audio_0)
fi

# ---------------------------------------------------------------- print
[ "${P[-1]}" = "$NL" ] && unset 'P[-1]'
# Shell-quote only what needs it, so the printed line can be copy-pasted.
quote() {
    if [[ "$1" =~ ^[][A-Za-z0-9_./:=,+@%!-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}
RUN=()
printed="gst-launch-1.0"
for tok in "${P[@]}"; do
    if [ "$tok" = "$NL" ]; then
        printed+=" \\"$'\n'"  "
    else
        RUN+=("$tok")
        printed+=" $(quote "$tok")"
    fi
done
echo "Pipeline (output: $OUT_ABS, playlist-type $PLAYLIST_TYPE, live $IS_LIVE${DURATION:+, duration ${DURATION}s}):"
echo "$printed"
[ "$DRY_RUN" = 1 ] && exit 0

if [ "$FAKE_SINK" = 0 ] && ! gst-inspect-1.0 hlsladdersink >/dev/null 2>&1; then
    echo "ladder.sh: GStreamer element hlsladdersink not found." >&2
    echo "  Build it (cargo build --release -p gst-plugin-hlsladder) and" >&2
    echo "  export GST_PLUGIN_PATH=<repo>/target/release, or install it with meson." >&2
    exit 1
fi
mkdir -p -- "$OUT_ABS"

# ---------------------------------------------------------------- run
# gst-launch-1.0 runs in its own process group (set -m), so a terminal Ctrl-C
# reaches only this script, which forwards exactly one SIGINT: two SIGINTs in
# a row make gst-launch-1.0 exit without EOS.
set -m
gst-launch-1.0 "${RUN[@]}" &
GST_PID=$!
set +m

STOP_AT=""        # $SECONDS value at which the stop was requested
on_signal() {
    local why="$1"
    kill -0 "$GST_PID" 2>/dev/null || return 0
    if [ -z "$STOP_AT" ]; then
        STOP_AT=$SECONDS
        echo "ladder.sh: $why: sending EOS (SIGINT to gst-launch-1.0)" >&2
        kill -INT "$GST_PID" 2>/dev/null || true
    elif [ $((SECONDS - STOP_AT)) -ge 2 ]; then
        echo "ladder.sh: $why again: killing gst-launch-1.0 without waiting for EOS" >&2
        kill -TERM "$GST_PID" 2>/dev/null || true
    fi
}
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP
trap 'kill -0 "$GST_PID" 2>/dev/null && kill -TERM "$GST_PID" 2>/dev/null; true' EXIT

# Poll instead of a plain `wait` so --duration and the EOS watchdog need no
# extra processes; `wait` on the short sleep returns early when a signal comes.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
if [ -n "$DURATION" ]; then
    DEADLINE_US=$(( $(now_us) + $(awk -v d="$DURATION" 'BEGIN { printf "%d", d * 1000000 }') ))
fi
while kill -0 "$GST_PID" 2>/dev/null; do
    if [ -n "$DURATION" ] && [ -z "$STOP_AT" ] && [ "$(now_us)" -ge "$DEADLINE_US" ]; then
        on_signal "--duration ${DURATION}s reached"
    fi
    if [ -n "$STOP_AT" ] && [ $((SECONDS - STOP_AT)) -ge "$EOS_TIMEOUT" ]; then
        echo "ladder.sh: no EOS after ${EOS_TIMEOUT}s, killing gst-launch-1.0" >&2
        kill -KILL "$GST_PID" 2>/dev/null || true
        STOP_AT=$((SECONDS + 1000000))   # do not repeat
    fi
    sleep 0.2 & wait $! 2>/dev/null || true
done
set +e
wait "$GST_PID"
RC=$?
set -e
trap - EXIT
exit "$RC"
