#!/usr/bin/env bash
# CPU benchmark for the hlsladdersink element (a benchmark, not a test).
#
# Compares, on the same cached 720p30 H.264 4 Mb/s + AAC MPEG-TS input:
#   ours      filesrc ! tsdemux ! h264parse/aacparse ! hlsladdersink
#   hlssink2  the same upstream into hlssink2 (gst-plugins-bad)
#   ffmpeg    ffmpeg -c copy -f hls
#   floor     the same upstream into fakesinks (demux + parse cost only)
#   ffnull    ffmpeg -c copy -f null (ffmpeg's demux cost without muxing)
# and reports the median CPU seconds (user+sys) of each whole process, and
# each segmenter's own cost: ours - floor beside ffmpeg - ffnull.
#
# This script never builds anything. Build the plugin first:
#     cargo build --release          # -> target/release/libgsthlsladder.so
#     bench/hls_cpu.sh
#
# Environment:
#   GST_PLUGIN_PATH      where libgsthlsladder.so is; default: <repo>/target/release
#   BENCH_RUNS           runs per candidate, median taken (default 3)
#   BENCH_SECONDS        input duration in seconds (default 300; e.g. 30 for a quick try)
#   BENCH_TIMEOUT        seconds after which one run counts as hung and is killed
#                        (default 60 + BENCH_SECONDS/10); a hung run is retried
#   GST_BROADCAST_CACHE  cache root (default ~/.cache/gst-broadcast); input is kept in <root>/bench
#
# Exit status: 0 when every candidate ran and its output looks sane, 1 otherwise
# (e.g. hlsladdersink not found because the plugin is not built).
set -u -o pipefail

RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-300}
CACHE_DIR="${GST_BROADCAST_CACHE:-$HOME/.cache/gst-broadcast}/bench"
TARGET_DUR=6
TIMEOUT=${BENCH_TIMEOUT:-$((60 + SECS / 10))}

die() { echo "hls_cpu: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer (got '$SECS')"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer (got '$TIMEOUT')"

# ---------------------------------------------------------------- tools
need() { # need <command> <debian package>
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing $2 (for $1)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >&2 \
            || die "apt-get install $2 failed"
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 not found (install package $2)"
}
TIME=/usr/bin/time
[[ -x $TIME ]] || need time time
[[ -x $TIME ]] || die "/usr/bin/time missing (apt-get install time)"
need ffmpeg ffmpeg
need gst-launch-1.0 gstreamer1.0-tools
need gst-inspect-1.0 gstreamer1.0-tools
need timeout coreutils

# ---------------------------------------------------------------- plugin path
if [[ -z ${GST_PLUGIN_PATH:-} ]]; then
    top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) \
        || die "GST_PLUGIN_PATH unset and not inside a git checkout"
    export GST_PLUGIN_PATH="$top/target/release"
fi

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hls_cpu.XXXXXX") || die "mktemp failed"
GEN_TMP=""
cleanup() {
    [[ -n $GEN_TMP ]] && rm -f -- "$GEN_TMP"
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private registry: every gst process (timed or not) uses the same, already
# scanned registry, so no timed run pays for a plugin rescan, and a plugin that
# fails to load is not left blacklisted in the user's ~/.cache/gstreamer-1.0.
export GST_REGISTRY="$WORK/registry.bin"

# ---------------------------------------------------------------- input (cached)
IN="$CACHE_DIR/testsrc2_1280x720p30_h264-4M_aac-128k_${SECS}s.ts"
mkdir -p "$CACHE_DIR" || die "cannot create $CACHE_DIR"
if [[ -s $IN ]]; then
    log "input (cached): $IN"
else
    GEN_TMP="$IN.partial.$$"
    log "generating ${SECS}s input: $IN"
    t0=$(date +%s.%N)
    ffmpeg -nostdin -hide_banner -v error -y \
        -f lavfi -i "testsrc2=size=1280x720:rate=30" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p \
        -b:v 4M -maxrate 4M -bufsize 8M -g 60 -keyint_min 60 -sc_threshold 0 \
        -c:a aac -b:a 128k \
        -t "$SECS" -f mpegts "$GEN_TMP" || die "input generation failed"
    mv -f -- "$GEN_TMP" "$IN" || die "rename of $GEN_TMP failed"
    GEN_TMP=""
    t1=$(date +%s.%N)
    log "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "generated in %.1f s", b-a}')"
fi
IN_BYTES=$(stat -c %s "$IN")

# ---------------------------------------------------------------- candidates
NAMES=(ours hlssink2 ffmpeg floor ffnull)

cmd_for() { # cmd_for <name> <outdir>  -> sets array CMD
    local o=$2
    case $1 in
    ours) CMD=(gst-launch-1.0 -q filesrc "location=$IN" ! tsdemux name=d
            d. ! queue ! h264parse ! s.video_0
            d. ! queue ! aacparse ! s.audio_0
            hlsladdersink name=s "output-directory=$o" "target-duration=$TARGET_DUR" playlist-type=vod) ;;
    hlssink2) CMD=(gst-launch-1.0 -q filesrc "location=$IN" ! tsdemux name=d
            d. ! queue ! h264parse ! s.video
            d. ! queue ! aacparse ! s.audio
            hlssink2 name=s "location=$o/seg%05d.ts" "playlist-location=$o/index.m3u8"
            "target-duration=$TARGET_DUR" max-files=0 playlist-length=0) ;;
    ffmpeg) CMD=(ffmpeg -nostdin -v error -i "$IN" -c copy -f hls -hls_time "$TARGET_DUR"
            -hls_playlist_type vod -hls_segment_filename "$o/seg%05d.ts" "$o/index.m3u8") ;;
    floor) CMD=(gst-launch-1.0 -q filesrc "location=$IN" ! tsdemux name=d
            d. ! queue ! h264parse ! fakesink
            d. ! queue ! aacparse ! fakesink) ;;
    ffnull) CMD=(ffmpeg -nostdin -v error -i "$IN" -c copy -f null -) ;;
    esac
}

declare -A SKIP FAILED CPU WALL RSS HANGS
FAILED_ANY=0

# Scan the private registry once, untimed, and check that our element is there.
gst-inspect-1.0 >/dev/null 2>&1
if ! gst-inspect-1.0 hlsladdersink >"$WORK/inspect.log" 2>&1; then
    SKIP[ours]=1
    FAILED_ANY=1
    {
        echo "!! ours: element 'hlsladdersink' not found (GST_PLUGIN_PATH=$GST_PLUGIN_PATH)."
        if [[ -e $GST_PLUGIN_PATH/libgsthlsladder.so ]]; then
            echo "!!   $GST_PLUGIN_PATH/libgsthlsladder.so exists but does not register the element:"
            GST_REGISTRY="$WORK/probe.bin" gst-inspect-1.0 "$GST_PLUGIN_PATH/libgsthlsladder.so" 2>&1 \
                | head -3 | sed 's/^/!!     /'
        else
            echo "!!   no libgsthlsladder.so there: run 'cargo build --release' first."
        fi
        echo "!! ours is skipped; the other candidates still run."
    } >&2
fi

for n in hlssink2 tsdemux h264parse aacparse; do
    gst-inspect-1.0 "$n" >/dev/null 2>&1 || die "GStreamer element $n missing (gstreamer1.0-plugins-bad / -good)"
done

# Warm the page cache so the first candidate does not pay for reading the input.
cat -- "$IN" >/dev/null

# A run that has not exited after BENCH_TIMEOUT s is killed and counted as a hang.
# hlssink2 (1.22) now and then writes its whole output, ENDLIST included, and then
# never posts EOS, so gst-launch never exits. A hung run is thrown away and run
# again (at most MAX_TRIES tries). Hangs of ours make the benchmark fail.
MAX_TRIES=3
run_one() { # run_one <name> <run#>
    local name=$1 i=$2 out="$WORK/out-$1" tf="$WORK/time-$1-$2" ef="$WORK/err-$1-$2" rc try u s e m
    cmd_for "$name" "$out"
    for ((try = 1; try <= MAX_TRIES; try++)); do
        rm -rf -- "$out"; mkdir -p -- "$out"   # keep only the last run's output
        $TIME -f '%U %S %e %M' -o "$tf" timeout -k 5 "$TIMEOUT" "${CMD[@]}" >/dev/null 2>"$ef"
        rc=$?
        [[ $rc -eq 124 || $rc -eq 137 ]] || break
        HANGS[$name]=$(( ${HANGS[$name]:-0} + 1 ))
        echo "!! $name run $i: no exit after ${TIMEOUT} s, killed (hang; $(find "$out" -name '*.ts' | wc -l) .ts written," \
             "ENDLIST $(grep -qs '^#EXT-X-ENDLIST' "$out/index.m3u8" "$out/v0/index.m3u8" && echo yes || echo no))" \
             "$([[ $try -lt $MAX_TRIES ]] && echo '- running it again')" >&2
    done
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "!! $name run $i hung on all $MAX_TRIES tries; $name is given up" >&2
        FAILED[$name]=1; SKIP[$name]=1; FAILED_ANY=1
        return 1
    elif [[ $rc -ne 0 ]]; then
        echo "!! $name run $i failed (exit $rc); stderr tail:" >&2
        grep -v '^Command exited with\|^Command terminated by' "$ef" | tail -n 8 | sed 's/^/!!   /' >&2
        FAILED[$name]=1; SKIP[$name]=1; FAILED_ANY=1
        return 1
    fi
    read -r u s e m < <(tail -n 1 "$tf")
    CPU[$name]+="$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}') "
    WALL[$name]+="$e "
    RSS[$name]+="$m "
    log "run $i/$RUNS  $(printf '%-9s' "$name") cpu $(awk -v u="$u" -v s="$s" 'BEGIN{printf "%6.2f", u+s}') s  wall ${e} s  rss $((m / 1024)) MB"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{if(!NR){print "nan";exit} if(NR%2)print a[(NR+1)/2]; else printf "%.3f\n",(a[NR/2]+a[NR/2+1])/2}'; }
maxof()  { tr ' ' '\n' | grep -v '^$' | sort -g | tail -n 1; }

log "$RUNS interleaved run(s) of: ${NAMES[*]}  (input ${SECS}s, $((IN_BYTES / 1048576)) MB)"
# How busy the machine is right now (1 s sample of /proc/stat), since other
# work on 2 cores (e.g. a cargo build) makes the figures noisy.
cpu_busy() {
    local a b
    a=$(head -n 1 /proc/stat); sleep 1; b=$(head -n 1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{
        n = split(a, x, " "); split(b, y, " ")
        for (i = 2; i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
        printf "%.0f", (t > 0) ? 100 * (t - idle) / t : 0 }'
}
BUSY_START=$(cpu_busy 2>/dev/null || echo "?")
if [[ $BUSY_START =~ ^[0-9]+$ ]] && (( BUSY_START > 15 )); then
    log "warning: the machine is ${BUSY_START}% busy before the runs; other work makes the figures noisy"
fi
T_START=$(date +%s.%N)
for ((i = 1; i <= RUNS; i++)); do
    for name in "${NAMES[@]}"; do
        [[ -n ${SKIP[$name]:-} ]] && continue
        run_one "$name" "$i"
    done
done
T_END=$(date +%s.%N)

# ---------------------------------------------------------------- report
declare -A MED
echo
echo "hls_cpu: ${SECS}s 1280x720p30 H.264 4M + AAC MPEG-TS, target-duration ${TARGET_DUR}, median of $RUNS run(s)"
printf '%-10s %12s %10s %12s %6s\n' name "cpu s (med)" "wall s" "max RSS MB" hangs
for name in "${NAMES[@]}"; do
    if [[ -z ${CPU[$name]:-} || -n ${FAILED[$name]:-} ]]; then
        printf '%-10s %12s %10s %12s %6s\n' "$name" "n/a" "n/a" "n/a" "${HANGS[$name]:-0}"
        continue
    fi
    MED[$name]=$(echo "${CPU[$name]}" | median)
    w=$(echo "${WALL[$name]}" | median)
    r=$(echo "${RSS[$name]}" | maxof)
    printf '%-10s %12.2f %10.2f %12.1f %6d\n' "$name" "${MED[$name]}" "$w" "$(awk -v k="$r" 'BEGIN{print k/1024}')" "${HANGS[$name]:-0}"
done
echo "(cpu = user+sys of the whole process; wall = median; RSS = peak over runs; hangs = runs killed"
echo " after ${TIMEOUT} s and run again, not counted; machine ${BUSY_START}% busy before the runs)"
if [[ ${HANGS[ours]:-0} -gt 0 ]]; then
    echo "!! ours hung ${HANGS[ours]} time(s): that is a bug in hlsladdersink" >&2
    FAILED_ANY=1
fi

ratio() { # ratio <num> <den>
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b <= 0) print "n/a"; else printf "%.2f", a/b }'
}
echo
o=${MED[ours]:-}; h=${MED[hlssink2]:-}; f=${MED[ffmpeg]:-}; fl=${MED[floor]:-}; fn=${MED[ffnull]:-}
if [[ -n $o && -n $f ]]; then
    echo "ours/ffmpeg      = $(ratio "$o" "$f")   (goal: ours/ffmpeg <= 1.0; 1.2 before the segmenter rework)"
else
    echo "ours/ffmpeg      = n/a    (goal: ours/ffmpeg <= 1.0)"
fi
if [[ -n $o && -n $h ]]; then
    echo "hlssink2/ours    = $(ratio "$h" "$o")   (goal: hlssink2/ours >= 5)"
else
    echo "hlssink2/ours    = n/a    (goal: hlssink2/ours >= 5)"
fi
if [[ -n $fl ]]; then
    so=$([[ -n $o ]] && awk -v a="$o" -v b="$fl" 'BEGIN{printf "%.2f", a-b}' || echo n/a)
    sh=$([[ -n $h ]] && awk -v a="$h" -v b="$fl" 'BEGIN{printf "%.2f", a-b}' || echo n/a)
    if [[ $so != n/a && $sh != n/a ]]; then
        echo "sink only (minus floor ${fl} s): ours ${so} s, hlssink2 ${sh} s, hlssink2/ours = $(ratio "$sh" "$so")"
    else
        echo "sink only (minus floor ${fl} s): ours ${so} s, hlssink2 ${sh} s"
    fi
fi
if [[ -n $fl && -n $o && -n $f && -n $fn ]]; then
    so=$(awk -v a="$o" -v b="$fl" 'BEGIN{printf "%.2f", a-b}')
    sf=$(awk -v a="$f" -v b="$fn" 'BEGIN{printf "%.2f", a-b}')
    echo "segmenter only: ours ${so} s (ours - floor) vs ffmpeg ${sf} s (-f hls minus -f null ${fn} s), ours/ffmpeg = $(ratio "$so" "$sf")"
    echo "demux floors: gstreamer ${fl} s, ffmpeg ${fn} s"
fi

# ---------------------------------------------------------------- sanity of outputs
extinf() { # extinf <playlist> -> "count total_seconds endlist"
    [[ -f $1 ]] || { echo "0 0 no"; return; }
    awk -F'[:,]' '/^#EXTINF:/{n++; t+=$2} /^#EXT-X-ENDLIST/{e="yes"} END{printf "%d %.1f %s\n", n, t, (e?e:"no")}' "$1"
}
echo
echo "output check (last run; input $IN_BYTES bytes, ${SECS}s -> expect ~$(( (SECS + TARGET_DUR - 1) / TARGET_DUR )) segments):"
for name in ours hlssink2 ffmpeg; do
    out="$WORK/out-$name"
    if [[ -n ${FAILED[$name]:-} ]]; then
        printf '  %-9s failed, not checked\n' "$name"; continue
    elif [[ ! -d $out ]]; then
        printf '  %-9s not run\n' "$name"; continue
    fi
    nts=$(find "$out" -name '*.ts' -type f | wc -l)
    bytes=$(find "$out" -name '*.ts' -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}')
    if [[ $name == ours ]]; then pl="$out/v0/index.m3u8"; else pl="$out/index.m3u8"; fi
    read -r ne dur endl < <(extinf "$pl")
    extra=""
    if [[ $name == ours ]]; then
        [[ -f $out/index.m3u8 ]] && extra=", multivariant index.m3u8 present" || extra=", multivariant index.m3u8 MISSING"
    fi
    status=ok
    if [[ $nts -eq 0 || $ne -eq 0 || ( $name == ours && ! -f $out/index.m3u8 ) ]]; then status=BAD; FAILED_ANY=1; fi
    printf '  %-9s %-3s %4d .ts files, %11d bytes; %s: %d EXTINF, %.1f s, ENDLIST %s%s\n' \
        "$name" "$status" "$nts" "$bytes" "${pl#"$out"/}" "$ne" "$dur" "$endl" "$extra"
done

echo
echo "total benchmark wall time: $(awk -v a="$T_START" -v b="$T_END" 'BEGIN{printf "%.1f", b-a}') s (excluding input generation)"
if [[ $FAILED_ANY -ne 0 ]]; then
    echo "hls_cpu: FAILED — see the '!!' lines above" >&2
    exit 1
fi
exit 0
