#!/usr/bin/env bash
# Receives MPEG-TS over RTP with SMPTE ST 2022-1 row/column FEC
# (st2022fecdec) via rtpbin and gst-launch-1.0, and writes the TS: media on
# UDP port P, column FEC on P+2, row FEC on P+4, RTCP from the sender on P+1.
# Works with pipelines/st2022fec-send.sh, FFmpeg
#   ffmpeg -re -i in.ts -c copy -f rtp_mpegts -fec prompeg=l=10:d=10 'rtp://HOST:5000?pkt_size=1328'
# and GStreamer's rtpst2022-1-fecenc.
#
# Usage:
#   pipelines/st2022fec-recv.sh [--address A] [--port P] [--out FILE.ts|-]
#       [--duration SECONDS] [--latency MS] [--fec-latency MS]
#       [--rtx [--sender-host H] [--rtcp-port N]] [--drop PROBABILITY]
#       [--fec-element st2022fecdec|rtpst2022-1-fecdec] [--dry-run]
#
#   --address A      local address to receive on (default 127.0.0.1; 0.0.0.0
#                    for every interface).
#   --port P         media port (default 5000); FEC on P+2 and P+4, RTCP on P+1.
#   --out FILE.ts    where the received TS goes (default ./received.ts);
#                    `-` writes it to stdout, e.g. `... --out - | ffplay -`.
#   --duration N     stop after N seconds (EOS: the file is complete).
#                    Without it: until Ctrl-C (also EOS).
#   --latency MS     rtpbin jitterbuffer latency (default 200).
#   --fec-latency MS how long st2022fecdec waits for FEC to rebuild a lost
#                    packet (its `latency`; default: the element's, 1000 ms,
#                    also bounded by 2 matrices of newer packets). Staggered
#                    column FEC arrives up to two matrices after the packet.
#   --rtx            also ask the sender for RFC 4588 retransmissions (RTCP
#                    NACK, AVPF; rtprtxreceive, payload type 97, SSRC 0x1234
#                    for SSRC 0, as st2022fec-send.sh --rtx sends them). RTCP
#                    goes back to --sender-host (default 127.0.0.1) port
#                    --rtcp-port (default P+6).
#   --drop P         drop media packets with probability P (netsim, from
#                    gst-plugins-bad) before the receiver: to see FEC work.
#   --fec-element E  st2022fecdec (default) or GStreamer's rtpst2022-1-fecdec
#                    (for comparison; --fec-latency sets its size-time).
#   --dry-run        only print the pipeline.
#
# Where the decoder goes:
# - Without --rtx, rtpbin makes it from its `fec-decoders` property
#   (`fec,0="st2022fecdec\ latency\=500"`), puts it between the SSRC demuxer
#   and the jitterbuffer, and links recv_fec_sink_0_0/recv_fec_sink_0_1 to its
#   fec_%u pads.
# - With --rtx it goes after rtpbin (`rtp. ! fec.sink st2022fecdec name=fec`),
#   its fec_0/fec_1 fed by the FEC udpsrcs directly. In rtpbin's place, before
#   the jitterbuffer, the decoder holds every packet behind a lost one until
#   FEC rebuilds it or its latency passes, so the jitterbuffer sees no gap
#   to ask a retransmission for until the decoder has given the packet up,
#   and a retransmitted packet that comes after that is late for the decoder
#   (counted in `late`; sent on out of order only with pass-late=true, which
#   the jitterbuffer has by then also given up). After the jitterbuffer, retransmission
#   repairs what it can within the jitterbuffer latency and FEC the rest.
#   rtprtxreceive sits before rtpbin: rtpbin's request-aux-receiver signal
#   cannot be used from gst-launch, and with its `ssrc-map` it restores the
#   original packets without seeing the retransmission requests.
#
# The decoder's counters (gst_st2022fec_recovered_total, ..._unrecoverable_total,
# ...) are in the process's metrics: GST_METRICS_ADDR=127.0.0.1:9464 serves
# them on /metrics, GST_METRICS_TEXTFILE_DIR=DIR writes them to DIR/*.prom.
#
# st2022fecdec must be findable: export GST_PLUGIN_PATH=<repo>/target/release
# (cargo build --release -p gst-plugin-st2022fec) or install it with meson.
set -euo pipefail

. "$(dirname "$0")/lib/gst-recipe.sh"
recipe_signals "$@"

ADDRESS=127.0.0.1
PORT=5000
OUT=./received.ts
DURATION=""
LATENCY=200
FEC_LATENCY=""
RTX=0
SENDER_HOST=127.0.0.1
RTCP_PORT=""
DROP=""
FEC_ELEMENT=st2022fecdec
DRY_RUN=0

while [ "$#" -gt 0 ]; do
    case "$1" in
        --address)     need_arg "$@"; ADDRESS="$2"; shift 2 ;;
        --port)        need_arg "$@"; PORT="$2"; shift 2 ;;
        --out)         need_arg "$@"; OUT="$2"; shift 2 ;;
        --duration)    need_arg "$@"; DURATION="$2"; shift 2 ;;
        --latency)     need_arg "$@"; LATENCY="$2"; shift 2 ;;
        --fec-latency) need_arg "$@"; FEC_LATENCY="$2"; shift 2 ;;
        --rtx)         RTX=1; shift ;;
        --sender-host) need_arg "$@"; SENDER_HOST="$2"; shift 2 ;;
        --rtcp-port)   need_arg "$@"; RTCP_PORT="$2"; shift 2 ;;
        --drop)        need_arg "$@"; DROP="$2"; shift 2 ;;
        --fec-element) need_arg "$@"; FEC_ELEMENT="$2"; shift 2 ;;
        --dry-run)     DRY_RUN=1; shift ;;
        -h|--help)     sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *)             die "unknown argument: $1 (see --help)" ;;
    esac
done

is_uint "$PORT" && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65530 ] || die "--port must be 1 to 65530"
[ -z "$RTCP_PORT" ] && RTCP_PORT=$((PORT + 6))
is_uint "$RTCP_PORT" && [ "$RTCP_PORT" -ge 1 ] && [ "$RTCP_PORT" -le 65535 ] || die "--rtcp-port must be 1 to 65535"
is_uint "$LATENCY" || die "--latency must be whole milliseconds"
[ -z "$FEC_LATENCY" ] || is_uint "$FEC_LATENCY" || die "--fec-latency must be whole milliseconds"
[ -z "$DURATION" ] || [[ "$DURATION" =~ ^[0-9]+$ ]] || die "--duration must be whole seconds"
[ -z "$DROP" ] || [[ "$DROP" =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || die "--drop must be a probability 0 to 1"
case "$FEC_ELEMENT" in
    st2022fecdec)
        FEC_PROPS=()
        [ -n "$FEC_LATENCY" ] && FEC_PROPS+=("latency=$FEC_LATENCY") ;;
    rtpst2022-1-fecdec)
        FEC_PROPS=()
        [ -n "$FEC_LATENCY" ] && FEC_PROPS+=("size-time=$((FEC_LATENCY * 1000000))") ;;
    *) die "--fec-element must be st2022fecdec or rtpst2022-1-fecdec" ;;
esac

# ---------------------------------------------------------------- pipeline

MEDIA_CAPS="application/x-rtp,media=video,clock-rate=90000,encoding-name=MP2T,payload=33"
FEC_CAPS="application/x-rtp,media=application,clock-rate=90000,encoding-name=PARITYFEC,payload=96"
if [ "$RTX" = 1 ]; then
    add rtpbin name=rtp "latency=$LATENCY" rtp-profile=avpf do-retransmission=true "$NL"
else
    desc="$FEC_ELEMENT"
    for p in ${FEC_PROPS[@]+"${FEC_PROPS[@]}"}; do desc+="\\ ${p/=/\\=}"; done
    add rtpbin name=rtp "latency=$LATENCY" "fec-decoders=fec,0=\"$desc\";" "$NL"
fi
add udpsrc "address=$ADDRESS" "port=$PORT" buffer-size=4194304 "caps=$MEDIA_CAPS" !
[ -n "$DROP" ] && add netsim "drop-probability=$DROP" !
if [ "$RTX" = 1 ]; then
    add rtprtxreceive "payload-type-map=application/x-rtp-pt-map,33=(uint)97" \
        "ssrc-map=application/x-rtp-ssrc-map,0=(uint)4660" !
fi
add rtp.recv_rtp_sink_0 "$NL"
if [ "$RTX" = 1 ]; then
    add udpsrc "address=$ADDRESS" "port=$((PORT + 2))" "caps=$FEC_CAPS" ! queue ! fec.fec_0 "$NL"
    add udpsrc "address=$ADDRESS" "port=$((PORT + 4))" "caps=$FEC_CAPS" ! queue ! fec.fec_1 "$NL"
else
    add udpsrc "address=$ADDRESS" "port=$((PORT + 2))" "caps=$FEC_CAPS" ! queue ! rtp.recv_fec_sink_0_0 "$NL"
    add udpsrc "address=$ADDRESS" "port=$((PORT + 4))" "caps=$FEC_CAPS" ! queue ! rtp.recv_fec_sink_0_1 "$NL"
fi
add udpsrc "address=$ADDRESS" "port=$((PORT + 1))" caps=application/x-rtcp ! rtp.recv_rtcp_sink_0 "$NL"
if [ "$RTX" = 1 ]; then
    add rtp.send_rtcp_src_0 ! udpsink "host=$SENDER_HOST" "port=$RTCP_PORT" sync=false async=false "$NL"
    add rtp. ! fec.sink "$FEC_ELEMENT" name=fec ${FEC_PROPS[@]+"${FEC_PROPS[@]}"} !
else
    add rtp. !
fi
add rtpmp2tdepay !
if [ "$OUT" = - ]; then
    add fdsink fd=1
else
    add filesink "location=$OUT"
fi

# ---------------------------------------------------------------- print, run
recipe_print
echo "Receiving on $ADDRESS: media $PORT, column FEC $((PORT + 2)), row FEC $((PORT + 4)) into $OUT:" >&2
echo "$PRINTED" >&2
[ "$DRY_RUN" = 1 ] && exit 0

need_element "$FEC_ELEMENT"
# gst-launch-1.0 prints its progress on stdout: keep stdout for the TS.
if [ "$OUT" = - ]; then
    GST=(gst-launch-1.0 -q)
else
    GST=(gst-launch-1.0)
fi
run_gst "$DURATION" "${GST[@]}" "${RUN[@]}"
