#!/usr/bin/env bash
# The main job: build hlsladdersink, encode a 3-rendition HLS ladder
# (720p/480p/360p H.264 + AAC) and serve it on http://127.0.0.1:PORT/.
#
#   bash scripts/main-job.sh [--duration SECONDS] [--input FILE_OR_URI]
#                            [--port 8080] [--out ./out]
#                            [--target-duration S] [--playlist-type live|event|vod]
#
#   --duration N  stop after N seconds (EOS: playlists get EXT-X-ENDLIST), then
#                 stop the web server and exit. Without it the job runs until
#                 Ctrl-C; with --input it encodes the file (faster than real
#                 time, EVENT playlists) and keeps serving until Ctrl-C.
#   --input X     media file or URI instead of the live test pattern.
#   --port P      HTTP port on 127.0.0.1 (default 8080).
#   --out DIR     output directory (default: <repo>/out; a relative DIR is
#                 taken relative to the current directory). Old playlists and
#                 segments in it are deleted at start.
#   --metrics-port P  serve the pipeline's Prometheus metrics (GOP interval,
#                 jitter, drops, bit rate per rendition, HLS segments) on
#                 http://127.0.0.1:P/metrics (default 9464; 0 disables).
#   --no-build    skip cargo build (use the existing <target>/release build).
#
# Steps: scripts/install-deps.sh, cargo build --release -p gst-plugin-hlsladder,
# GST_PLUGIN_PATH=<target>/release, static HTTP server for DIR, DIR/player.html,
# then pipelines/ladder.sh. Ctrl-C (or SIGTERM) sends EOS to the pipeline, waits
# for the playlists to be finalised and stops the server; a second Ctrl-C
# (2 s later or more) kills the pipeline without waiting.
# Works from any current directory.
set -euo pipefail

# Background jobs of non-interactive shells start with SIGINT ignored and bash
# cannot trap it then; re-exec once with default dispositions.
if [ -z "${_MAINJOB_SIGRESET:-}" ] && env --default-signal=INT true 2>/dev/null; then
    _MAINJOB_SIGRESET=1 exec env --default-signal=INT,TERM,HUP "$BASH" "$0" "$@"
fi
unset _MAINJOB_SIGRESET

die() { echo "main-job: $*" >&2; exit 2; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }

ORIG_PWD="$PWD"
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"

DURATION=""
INPUT=""
PORT=8080
METRICS_PORT=9464
OUT=""
LADDER_EXTRA=()
BUILD=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        --duration)         need_arg "$@"; DURATION="$2"; shift 2 ;;
        --duration=*)       DURATION="${1#*=}"; shift ;;
        --input)            need_arg "$@"; INPUT="$2"; shift 2 ;;
        --input=*)          INPUT="${1#*=}"; shift ;;
        --port)             need_arg "$@"; PORT="$2"; shift 2 ;;
        --port=*)           PORT="${1#*=}"; shift ;;
        --out)              need_arg "$@"; OUT="$2"; shift 2 ;;
        --out=*)            OUT="${1#*=}"; shift ;;
        --metrics-port)     need_arg "$@"; METRICS_PORT="$2"; shift 2 ;;
        --metrics-port=*)   METRICS_PORT="${1#*=}"; shift ;;
        --no-build)         BUILD=0; shift ;;
        --target-duration|--playlist-type)
                            need_arg "$@"; LADDER_EXTRA+=("$1" "$2"); shift 2 ;;
        --target-duration=*|--playlist-type=*|--live|--no-live|--no-audio)
                            LADDER_EXTRA+=("$1"); shift ;;
        -h|--help)          sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *)                  die "unknown argument: $1 (see --help)" ;;
    esac
done

[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port must be 1-65535"
[[ "$METRICS_PORT" =~ ^[0-9]+$ ]] && [ "$METRICS_PORT" -le 65535 ] || die "--metrics-port must be 0-65535"
[ -z "$DURATION" ] || [[ "$DURATION" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration must be a number of seconds"

# Resolve user paths against the caller's directory, then work from the repo.
if [ -z "$OUT" ]; then
    OUT="$ROOT/out"
else
    OUT="$(cd -- "$ORIG_PWD" && realpath -m -- "$OUT")"
fi
if [ -n "$INPUT" ] && ! [[ "$INPUT" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; then
    INPUT="$(cd -- "$ORIG_PWD" && realpath -m -- "$INPUT")"
    [ -f "$INPUT" ] || die "input file not found: $INPUT"
fi
cd -- "$ROOT"

# ---------------------------------------------------------------- deps + build
bash scripts/install-deps.sh

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ "$BUILD" = 1 ]; then
    echo "main-job: cargo build --release -p gst-plugin-hlsladder -p gst-plugin-streammetrics"
    cargo build --release -p gst-plugin-hlsladder -p gst-plugin-streammetrics
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export GST_PLUGIN_PATH="$TARGET_DIR/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
if ! gst-inspect-1.0 hlsladdersink >/dev/null 2>&1; then
    echo "main-job: hlsladdersink not found in $TARGET_DIR/release after the build" >&2
    echo "main-job: check: GST_PLUGIN_PATH=$GST_PLUGIN_PATH GST_DEBUG=2 gst-inspect-1.0 hlsladdersink" >&2
    exit 1
fi

# ---------------------------------------------------------------- output dir
mkdir -p -- "$OUT"
# Remove playlists/segments of a previous run so nothing stale is served.
find "$OUT" -mindepth 1 -maxdepth 2 -type f \( -name '*.m3u8' -o -name '*.ts' \) -delete
find "$OUT" -mindepth 1 -maxdepth 1 -type d -empty -delete

HLSJS="$ROOT/tests/browser/node_modules/hls.js/dist/hls.min.js"
if [ -f "$HLSJS" ]; then
    cp -f -- "$HLSJS" "$OUT/hls.min.js"
else
    rm -f -- "$OUT/hls.min.js"
fi

cat > "$OUT/player.html" <<'HTML'
<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>gst-broadcast HLS ladder</title>
<style>
  body { font-family: sans-serif; background: #111; color: #ddd; margin: 1.5em; }
  video { width: 100%; max-width: 1280px; background: #000; display: block; }
  #status { font-family: monospace; }
</style>
</head>
<body>
<video id="video" controls autoplay muted playsinline></video>
<p id="status">Waiting for index.m3u8 ...</p>
<script>
// Native HLS where the browser has it (Safari, some mobile browsers), else
// hls.js served next to this page (copied from tests/browser/node_modules).
// player.html?hlsjs forces hls.js.
(function () {
  'use strict';
  const src = 'index.m3u8';
  const video = document.getElementById('video');
  const say = (t) => { document.getElementById('status').textContent = t; };

  function startHlsJs() {
    if (!window.Hls || !Hls.isSupported()) { say('hls.js cannot play here (no Media Source Extensions).'); return; }
    const hls = new Hls();
    hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) say('hls.js fatal error: ' + d.type + ' / ' + d.details); });
    hls.on(Hls.Events.LEVEL_SWITCHED, (ev, d) => {
      const l = hls.levels[d.level];
      say('hls.js ' + Hls.version + ': ' + l.width + 'x' + l.height + ' @ ' + Math.round(l.bitrate / 1000) + ' kb/s');
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  }

  function start() {
    const forceHlsJs = /[?&]hlsjs(=|&|$)/.test(location.search);
    if (!forceHlsJs && video.canPlayType('application/vnd.apple.mpegurl')) {
      say('Native HLS playback');
      video.src = src;
      return;
    }
    const s = document.createElement('script');
    s.src = 'hls.min.js';
    s.onload = startHlsJs;
    s.onerror = () => say('This browser has no native HLS and hls.min.js is not here: run "npm ci" in ' +
                          'tests/browser and restart the job, or play the stream with ffplay / vlc.');
    document.head.appendChild(s);
  }

  // The multivariant playlist appears with the first segment: wait for it.
  (function waitForPlaylist() {
    fetch(src, { method: 'HEAD', cache: 'no-store' })
      .then((r) => { if (r.ok) start(); else setTimeout(waitForPlaylist, 1000); })
      .catch(() => setTimeout(waitForPlaylist, 1000));
  })();
})();
</script>
</body>
</html>
HTML

# ---------------------------------------------------------------- web server
# http.server plus: no caching of playlists (they change under the same name
# and http.server answers If-Modified-Since with 1 s resolution), HLS MIME
# types, CORS, no per-request log lines.
SERVER_PY='
import functools, http.server, sys
port, root, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t",
                      ".js": "text/javascript", ".html": "text/html"}
    def end_headers(self):
        if self.path.split("?", 1)[0].endswith((".m3u8", ".html")):
            self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()
    def log_request(self, code="-", size="-"):
        pass
    def log_error(self, fmt, *args):
        # Playlists 404 until the first segment is written: not worth a line.
        if not (args and args[0] == 404 and self.path.split("?", 1)[0].endswith(".m3u8")):
            super().log_error(fmt, *args)
http.server.ThreadingHTTPServer.allow_reuse_address = True
try:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root))
except OSError as e:
    sys.exit(f"main-job: cannot listen on 127.0.0.1:{port}: {e}")
print(f"main-job: serving {root} on http://127.0.0.1:{port}/", flush=True)
open(ready, "w").close()
httpd.serve_forever()
'

SERVER_PID=""
LADDER_PID=""
SLEEP_PID=""
TMPD=""
STOPPING=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    [ -z "$SLEEP_PID" ] || kill "$SLEEP_PID" 2>/dev/null || true
    if [ -n "$LADDER_PID" ] && kill -0 "$LADDER_PID" 2>/dev/null; then
        kill -TERM "$LADDER_PID" 2>/dev/null || true
        wait "$LADDER_PID" 2>/dev/null || true
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        echo "main-job: web server stopped"
    fi
    [ -z "$TMPD" ] || rm -rf -- "$TMPD"
    exit "$rc"
}
on_signal() {
    STOPPING=1
    if [ -n "$LADDER_PID" ] && kill -0 "$LADDER_PID" 2>/dev/null; then
        # ladder.sh turns this into EOS (and a later repeat into a hard stop).
        kill -TERM "$LADDER_PID" 2>/dev/null || true
    elif [ -n "$SLEEP_PID" ]; then
        exit 0      # only serving a finished ladder
    else
        exit 130
    fi
}
trap cleanup EXIT
trap on_signal INT TERM HUP

TMPD="$(mktemp -d)"
python3 -c "$SERVER_PY" "$PORT" "$OUT" "$TMPD/ready" &
SERVER_PID=$!
for _ in $(seq 100); do
    [ -e "$TMPD/ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if ! [ -e "$TMPD/ready" ]; then
    kill -0 "$SERVER_PID" 2>/dev/null || SERVER_PID=""
    die "web server did not start on 127.0.0.1:$PORT (port in use? try --port)"
fi

URL="http://127.0.0.1:$PORT/index.m3u8"
METRICS_URL=""
if [ "$METRICS_PORT" != 0 ]; then
    # Read by the plugins when they load: the pipeline process serves
    # /metrics itself (exporter crate).
    export GST_METRICS_ADDR="127.0.0.1:$METRICS_PORT"
    METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics"
fi
cat <<EOF

Multivariant playlist: $URL
  (it appears with the first segment, a few seconds after the pipeline starts)
Play it with:
  ffplay $URL
  vlc $URL
  browser: http://127.0.0.1:$PORT/player.html
${METRICS_URL:+Metrics (Prometheus text format: GOP interval, jitter, drops and bit rate
per rendition, HLS segments): $METRICS_URL
}Stop with Ctrl-C (EOS: playlists are finalised with EXT-X-ENDLIST).

EOF

# ---------------------------------------------------------------- pipeline
LADDER_ARGS=(--out "$OUT")
[ -n "$INPUT" ] && LADDER_ARGS+=(--input "$INPUT")
[ -n "$DURATION" ] && LADDER_ARGS+=(--duration "$DURATION")
LADDER_ARGS+=("${LADDER_EXTRA[@]}")

# Own process group (set -m): a terminal Ctrl-C reaches only this script,
# which forwards one SIGTERM to ladder.sh.
set -m
bash pipelines/ladder.sh "${LADDER_ARGS[@]}" &
LADDER_PID=$!
set +m

RC=0
while :; do
    set +e
    wait "$LADDER_PID"
    RC=$?
    set -e
    kill -0 "$LADDER_PID" 2>/dev/null || break   # else: wait was interrupted by a signal
done
# If the last wait was cut short by a signal, the exit status is still stored.
set +e; wait "$LADDER_PID" 2>/dev/null; r=$?; set -e
[ "$r" -eq 127 ] || RC=$r
LADDER_PID=""

if [ "$RC" -ne 0 ]; then
    echo "main-job: pipeline exited with status $RC" >&2
    exit "$RC"
fi
if [ -z "$DURATION" ] && [ "$STOPPING" = 0 ]; then
    # The input ended by itself (file): keep serving the finished ladder.
    echo "main-job: encoding finished; still serving $URL (Ctrl-C to stop)"
    while :; do sleep 3600 & SLEEP_PID=$!; wait "$SLEEP_PID" || true; done
fi
exit 0
