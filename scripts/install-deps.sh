#!/usr/bin/env bash
# Install the system packages gst-broadcast needs on Debian 12 (bookworm).
#
#   scripts/install-deps.sh          # build + run dependencies
#   scripts/install-deps.sh --test   # ... plus what the end-to-end tests use
#
# Idempotent: apt is not touched at all when every package is already
# installed, and `apt-get update` only runs when something is missing.
# Assumes the Rust toolchain is already installed.
set -euo pipefail

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

PACKAGES=(
    libgstreamer1.0-dev
    libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly
    gstreamer1.0-tools
    gstreamer1.0-libav
    # gstreamer1.0-libav's libavcodec needs libblas3, which is only a
    # Recommends: without it the libav plugin fails to load (and then stays
    # blacklisted in the registry cache, see below).
    libblas3
    # timeoverlay (pango plugin) lives in gstreamer1.0-x on Debian.
    gstreamer1.0-x
    ffmpeg
    pkg-config
    meson
    ninja-build
    python3
    ca-certificates
)

if [ "$WITH_TEST" = 1 ]; then
    PACKAGES+=(chromium prometheus time)
    # This machine may have Node.js from outside apt; only install the
    # Debian packages when node/npm are not already on PATH.
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        PACKAGES+=(nodejs npm)
    fi
fi

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

MISSING=()
for p in "${PACKAGES[@]}"; do
    is_installed "$p" || MISSING+=("$p")
done

if [ "${#MISSING[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
    echo "install-deps: installing: ${MISSING[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "install-deps: need root (or sudo) to install: ${MISSING[*]}" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only if they are absent or the install fails
    # because they are stale.
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        "${SUDO[@]}" apt-get update
    fi
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${MISSING[@]}"; then
        echo "install-deps: install failed, refreshing package lists and retrying" >&2
        "${SUDO[@]}" apt-get update
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${MISSING[@]}"
    fi
fi

# A plugin that failed to load once (e.g. libav before libblas3 was present)
# stays blacklisted in the registry cache until the cache file is removed.
REQUIRED_ELEMENTS=(avenc_aac x264enc h264parse aacparse videoscale timeoverlay uridecodebin)
missing_elements() {
    local e out=()
    for e in "${REQUIRED_ELEMENTS[@]}"; do
        gst-inspect-1.0 "$e" >/dev/null 2>&1 || out+=("$e")
    done
    echo "${out[*]}"
}

gone=$(missing_elements)
if [ -n "$gone" ]; then
    echo "install-deps: GStreamer elements not found: $gone; clearing the registry cache and retrying" >&2
    rm -f "${GST_REGISTRY:-/nonexistent}" \
          "${XDG_CACHE_HOME:-$HOME/.cache}"/gstreamer-1.0/registry.*.bin
    gone=$(missing_elements)
    if [ -n "$gone" ]; then
        echo "install-deps: still missing GStreamer elements: $gone" >&2
        echo "install-deps: try: GST_DEBUG=2 gst-inspect-1.0 ${gone%% *}" >&2
        exit 1
    fi
fi
echo "install-deps: GStreamer elements OK (${REQUIRED_ELEMENTS[*]})"
