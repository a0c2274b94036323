# shellcheck shell=bash
# Shared by the recipes in pipelines/ (sourced, not run): building a
# gst-launch-1.0 command line token by token, printing it readably, and
# running it so that Ctrl-C, SIGTERM or a --duration end the stream with EOS
# (the output file is then complete).
#
#   . "$(dirname "$0")/lib/gst-recipe.sh"
#   recipe_signals "$@"      # first thing: re-exec with default signal dispositions
#   P=(-e); add ...; add "$NL"  # "$NL" marks a line break in the printed command
#   recipe_print              # prints the command to stderr, fills RUN
#   run_gst "$DURATION" gst-launch-1.0 "${RUN[@]}"

# A non-interactive shell starts background jobs with SIGINT ignored, and bash
# cannot trap a signal that was ignored on entry. Re-exec the recipe once with
# default signal dispositions so that `kill -INT` stops the pipeline cleanly
# however it was started. Call with the recipe's arguments.
recipe_signals() {
    if [ -z "${_GST_RECIPE_SIGRESET:-}" ] && env --default-signal=INT true 2>/dev/null; then
        _GST_RECIPE_SIGRESET=1 exec env --default-signal=INT,TERM,HUP "$BASH" "$0" "$@"
    fi
    unset _GST_RECIPE_SIGRESET
}

die() { echo "${0##*/}: $*" >&2; exit 2; }
need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

NL=$'\n'
P=(-e)
add() { P+=("$@"); }

quote() {
    if [[ "$1" =~ ^[][A-Za-z0-9_./:=,+@%!-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

# Turns P into RUN (the arguments for gst-launch-1.0) and PRINTED (the command
# as one would type it, a line per "$NL").
recipe_print() {
    [ "${P[-1]}" = "$NL" ] && unset 'P[-1]'
    RUN=()
    PRINTED="gst-launch-1.0"
    local tok
    for tok in "${P[@]}"; do
        if [ "$tok" = "$NL" ]; then
            PRINTED+=" \\"$'\n'"  "
        else
            RUN+=("$tok")
            PRINTED+=" $(quote "$tok")"
        fi
    done
}

# Exits 1 with a hint when element $1 is not found.
need_element() {
    if ! gst-inspect-1.0 "$1" >/dev/null 2>&1; then
        echo "${0##*/}: GStreamer element $1 not found." >&2
        echo "  cargo build --release and export GST_PLUGIN_PATH=<repo>/target/release," >&2
        echo "  or install the plugins with meson." >&2
        exit 1
    fi
}

# gst-launch-1.0 runs in its own process group, so that a terminal Ctrl-C
# reaches only this script, which sends it exactly one SIGINT (gst-launch-1.0
# -e then sends EOS; a second SIGINT would kill it before EOS completes; this
# is also why `timeout`, which signals both the command and its process group,
# is not used). The same happens after --duration. If EOS takes longer than
# $GST_RECIPE_EOS_TIMEOUT seconds (default 15), gst-launch-1.0 is killed.
run_gst() { # run_gst <seconds or empty> command...
    local duration=$1 eos_timeout=${GST_RECIPE_EOS_TIMEOUT:-15} stop_at="" rc
    shift
    set -m
    "$@" &
    local pid=$!
    set +m
    stop() {
        kill -0 "$pid" 2>/dev/null || return 0
        if [ -z "$stop_at" ]; then
            stop_at=$SECONDS
            kill -INT "$pid" 2>/dev/null || true
        fi
    }
    trap stop INT TERM HUP
    trap 'kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null; true' EXIT
    local started=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if [ -n "$duration" ] && [ -z "$stop_at" ] && [ $((SECONDS - started)) -ge "$duration" ]; then
            stop
        fi
        if [ -n "$stop_at" ] && [ $((SECONDS - stop_at)) -ge "$eos_timeout" ]; then
            echo "${0##*/}: no EOS after ${eos_timeout}s, killing gst-launch-1.0" >&2
            kill -KILL "$pid" 2>/dev/null || true
            stop_at=$((SECONDS + 1000000))
        fi
        sleep 0.2 & wait $! 2>/dev/null || true
    done
    set +e
    wait "$pid"
    rc=$?
    set -e
    trap - EXIT
    exit "$rc"
}
