#!/usr/bin/env bash
# MPEG-TS over RTP with SMPTE ST 2022-1 row/column FEC (st2022fecenc), via
# rtpbin and gst-launch-1.0: media on UDP port P, column FEC on P+2, row FEC
# on P+4 (what FFmpeg's prompeg, VLC and ST 2022-1 receivers expect). Receive
# it with pipelines/st2022fec-recv.sh, or with
#   ffplay 'rtp://127.0.0.1:5000'      (FFmpeg reads no FEC, but plays the media)
#
# Usage:
#   pipelines/st2022fec-send.sh [--host H] [--port P] [--input FILE.ts]
#       [--duration SECONDS] [--bitrate KBPS] [--columns L] [--rows D]
#       [--layout staggered|block-aligned] [--no-row-fec] [--no-column-fec]
#       [--rtx [--rtcp-port N]] [--fec-element st2022fecenc|rtpst2022-1-fecenc]
#       [--dry-run]
#
#   --host H         receiver address (default 127.0.0.1).
#   --port P         media port (default 5000); FEC goes to P+2 (columns) and
#                    P+4 (rows).
#   --input FILE.ts  an MPEG-TS file, sent in real time (paced by its PCR).
#                    Default: live test sources (640x360 30 fps H.264 at
#                    --bitrate kbit/s, default 3000, and AAC), muxed to TS.
#   --duration N     stop after N seconds (test sources: N seconds of media
#                    then EOS; a file: stopped with EOS after N seconds).
#   --columns L, --rows D
#                    the FEC matrix (default 10 x 10: 20 % overhead; L x D at
#                    most 100, L and D 4 to 20, L 1 to 20 with --no-row-fec).
#   --layout         when column FEC leaves: staggered (default; over the next
#                    matrix, as FFmpeg and GStreamer send it, so that a burst
#                    does not take the column packets with the media) or
#                    block-aligned (right after each column; half the
#                    receiver latency, weaker against bursts).
#   --no-row-fec     ST 2022-1 level A (column FEC only); --no-column-fec:
#                    row FEC only.
#   --rtx            also answer RTCP NACKs with RFC 4588 retransmissions
#                    (rtprtxsend, payload type 97, SSRC 0x1234 for SSRC 0),
#                    AVPF profile. The receiver's RTCP (and NACKs) come back to
#                    --rtcp-port (default P+6) on this host.
#   --fec-element E  st2022fecenc (default) or GStreamer's rtpst2022-1-fecenc
#                    (for comparison; it has no --layout: always staggered).
#   --dry-run        only print the pipeline.
#
# How the FEC is put in:
# - Without --rtx, through rtpbin's `fec-encoders` property: rtpbin makes the
#   encoder from the description `fec,0="st2022fecenc\ columns\=10 ..."` and
#   exposes its fec_0/fec_1 pads as send_fec_src_0_0/send_fec_src_0_1.
# - With --rtx the encoder sits before rtprtxsend, outside rtpbin. rtpbin
#   (1.22) puts its FEC encoder between send_rtp_sink and the RTP session, and
#   rtprtxsend must be upstream of the session to get its retransmission
#   requests: its RTX packets (another SSRC and payload type) would then go
#   through the FEC encoder and be protected as if they were media, which
#   breaks the matrix at every retransmission. rtpbin's request-aux-sender
#   signal, the other way in, cannot be used from gst-launch.
# - No RTCP sender reports go out (send_rtcp_src is not linked): with it
#   linked, rtpbin 1.22 often never posts EOS at the end of the stream (about
#   half of 10-run trials hung, with or without FEC), and MPEG-TS carries its
#   own clock. With --rtx, rtpbin still reads the receiver's RTCP (NACKs) on
#   --rtcp-port.
#
# The encoder's counters (gst_st2022fec_*) are in the process's metrics:
# GST_METRICS_ADDR=127.0.0.1:9464 serves them on /metrics.
#
# st2022fecenc must be findable: export GST_PLUGIN_PATH=<repo>/target/release
# (cargo build --release -p gst-plugin-st2022fec) or install it with meson.
set -euo pipefail

. "$(dirname "$0")/lib/gst-recipe.sh"
recipe_signals "$@"

HOST=127.0.0.1
PORT=5000
INPUT=""
DURATION=""
BITRATE=3000
COLUMNS=10
ROWS=10
LAYOUT=staggered
ROW_FEC=true
COLUMN_FEC=true
RTX=0
RTCP_PORT=""
FEC_ELEMENT=st2022fecenc
DRY_RUN=0

while [ "$#" -gt 0 ]; do
    case "$1" in
        --host)          need_arg "$@"; HOST="$2"; shift 2 ;;
        --port)          need_arg "$@"; PORT="$2"; shift 2 ;;
        --input)         need_arg "$@"; INPUT="$2"; shift 2 ;;
        --duration)      need_arg "$@"; DURATION="$2"; shift 2 ;;
        --bitrate)       need_arg "$@"; BITRATE="$2"; shift 2 ;;
        --columns)       need_arg "$@"; COLUMNS="$2"; shift 2 ;;
        --rows)          need_arg "$@"; ROWS="$2"; shift 2 ;;
        --layout)        need_arg "$@"; LAYOUT="$2"; shift 2 ;;
        --no-row-fec)    ROW_FEC=false; shift ;;
        --no-column-fec) COLUMN_FEC=false; shift ;;
        --rtx)           RTX=1; shift ;;
        --rtcp-port)     need_arg "$@"; RTCP_PORT="$2"; shift 2 ;;
        --fec-element)   need_arg "$@"; FEC_ELEMENT="$2"; shift 2 ;;
        --dry-run)       DRY_RUN=1; shift ;;
        -h|--help)       sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *)               die "unknown argument: $1 (see --help)" ;;
    esac
done

is_uint "$PORT" && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65530 ] || die "--port must be 1 to 65530"
[ -z "$RTCP_PORT" ] && RTCP_PORT=$((PORT + 6))
is_uint "$RTCP_PORT" && [ "$RTCP_PORT" -ge 1 ] && [ "$RTCP_PORT" -le 65535 ] || die "--rtcp-port must be 1 to 65535"
is_uint "$COLUMNS" && is_uint "$ROWS" || die "--columns and --rows must be whole numbers"
is_uint "$BITRATE" && [ "$BITRATE" -ge 1 ] || die "--bitrate must be kbit/s >= 1"
[ -z "$DURATION" ] || [[ "$DURATION" =~ ^[0-9]+$ ]] || die "--duration must be whole seconds"
case "$LAYOUT" in staggered|block-aligned) ;; *) die "--layout must be staggered or block-aligned" ;; esac
case "$FEC_ELEMENT" in
    st2022fecenc)
        FEC_PROPS=(columns="$COLUMNS" rows="$ROWS" column-layout="$LAYOUT"
                   enable-row-fec="$ROW_FEC" enable-column-fec="$COLUMN_FEC") ;;
    rtpst2022-1-fecenc)
        [ "$LAYOUT" = staggered ] || die "rtpst2022-1-fecenc sends column FEC staggered only"
        FEC_PROPS=(columns="$COLUMNS" rows="$ROWS" enable-row-fec="$ROW_FEC" enable-column-fec="$COLUMN_FEC") ;;
    *) die "--fec-element must be st2022fecenc or rtpst2022-1-fecenc" ;;
esac
[ -z "$INPUT" ] || [ -f "$INPUT" ] || die "input file not found: $INPUT"

# ---------------------------------------------------------------- pipeline
# P holds gst-launch-1.0 arguments; $NL only marks where the printed command
# breaks lines.

RTPBIN=(rtpbin name=rtp)
if [ "$RTX" = 1 ]; then
    RTPBIN+=(rtp-profile=avpf)
else
    # rtpbin parses the value as a structure: spaces and '=' inside the
    # element description are escaped.
    desc="$FEC_ELEMENT"
    for p in "${FEC_PROPS[@]}"; do desc+="\\ ${p/=/\\=}"; done
    RTPBIN+=("fec-encoders=fec,0=\"$desc\";")
fi
add "${RTPBIN[@]}" "$NL"

# MPEG-TS in 7-packet (1316-byte) buffers, timestamped, at the payloader.
if [ -z "$INPUT" ]; then
    if [ -n "$DURATION" ]; then
        VBUF="num-buffers=$((DURATION * 30))"
        ABUF="num-buffers=$((DURATION * 48000 / 1024))"
    else
        VBUF=""; ABUF=""
    fi
    add videotestsrc is-live=true pattern=smpte $VBUF !
    add video/x-raw,format=I420,width=640,height=360,framerate=30/1 !
    add x264enc "bitrate=$BITRATE" tune=zerolatency speed-preset=superfast key-int-max=30 !
    add h264parse config-interval=-1 ! queue ! mux. "$NL"
    add audiotestsrc is-live=true wave=sine samplesperbuffer=1024 $ABUF !
    add audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate=128000 !
    add aacparse ! queue ! mux. "$NL"
    add mpegtsmux name=mux alignment=7 !
else
    # tsparse timestamps from the PCR; udpsink (sync=true) paces by them.
    add filesrc "location=$INPUT" ! tsparse set-timestamps=true alignment=7 !
fi
add rtpmp2tpay ssrc=0 pt=33 !
if [ "$RTX" = 1 ]; then
    add "$FEC_ELEMENT" name=fec "${FEC_PROPS[@]}" !
    add rtprtxsend "payload-type-map=application/x-rtp-pt-map,33=(uint)97" \
        "ssrc-map=application/x-rtp-ssrc-map,0=(uint)4660" max-size-time=2000 !
fi
add rtp.send_rtp_sink_0 "$NL"
add rtp.send_rtp_src_0 ! udpsink "host=$HOST" "port=$PORT" "$NL"
if [ "$RTX" = 1 ]; then
    add fec.fec_0 ! udpsink "host=$HOST" "port=$((PORT + 2))" async=false "$NL"
    add fec.fec_1 ! udpsink "host=$HOST" "port=$((PORT + 4))" async=false "$NL"
else
    add rtp.send_fec_src_0_0 ! udpsink "host=$HOST" "port=$((PORT + 2))" async=false "$NL"
    add rtp.send_fec_src_0_1 ! udpsink "host=$HOST" "port=$((PORT + 4))" async=false "$NL"
fi
if [ "$RTX" = 1 ]; then
    add udpsrc "port=$RTCP_PORT" caps=application/x-rtcp ! rtp.recv_rtcp_sink_0
fi

# ---------------------------------------------------------------- print, run
recipe_print
what="${COLUMNS}x$ROWS $LAYOUT"
[ "$RTX" = 1 ] && what+=", RTX (RTCP in on $RTCP_PORT)"
echo "Sending to $HOST: media $PORT, column FEC $((PORT + 2)), row FEC $((PORT + 4)), $what:" >&2
echo "$PRINTED" >&2
[ "$DRY_RUN" = 1 ] && exit 0

need_element "$FEC_ELEMENT"
if [ -n "$INPUT" ]; then run_gst "$DURATION" gst-launch-1.0 "${RUN[@]}"; fi
run_gst "" gst-launch-1.0 "${RUN[@]}"
