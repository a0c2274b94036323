#!/bin/sh
# Self-test of play.mjs without the GStreamer element: builds a 3-variant HLS ladder with
# ffmpeg (apt-get install -y ffmpeg) and checks one passing and two failing runs.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 \
  -filter_complex "[0:v]split=3[a][b][c];[a]setsar=1[a2];[b]scale=426:240,setsar=1[b2];[c]scale=320:180,setsar=1[c2]" \
  -map "[a2]" -map "[b2]" -map "[c2]" -map 1:a -map 1:a -map 1:a \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
  -b:v:0 800k -b:v:1 400k -b:v:2 200k -c:a aac -b:a 96k \
  -f hls -hls_time 2 -hls_playlist_type vod -master_pl_name index.m3u8 \
  -var_stream_map "v:0,a:0 v:1,a:1 v:2,a:2" \
  -hls_segment_filename "$T/v%v/seg%05d.ts" "$T/v%v/index.m3u8"
sed 's#^v1/index.m3u8#missing/index.m3u8#' "$T/index.m3u8" > "$T/broken.m3u8"
run() { node "$HERE/play.mjs" --dir "$T" --quiet "$@" >/dev/null && echo 0 || echo $?; }
pass=0; failed=0
check() { if [ "$1" = "$2" ]; then pass=$((pass+1)); echo "ok: $3"; else failed=$((failed+1)); echo "FAIL: $3 (exit $1, want $2)"; fi; }
check "$(run --master index.m3u8 --expect 640x360,426x240,320x180)" 0 "3-level ladder plays"
check "$(run --master index.m3u8 --expect 640x360,426x240,320x240 --timeout-s 10)" 1 "wrong size fails"
check "$(run --master broken.m3u8 --expect 640x360,426x240,320x180 --timeout-s 10)" 1 "missing variant fails"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
