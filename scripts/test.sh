#!/usr/bin/env bash
# README command 2: install what the tests need (idempotent), build, and run
# the whole test suite: formatting, clippy, unit and element tests, and the
# end-to-end tests with ffmpeg/ffprobe and hls.js in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh --test

# hls.js and playwright-core for the browser tests, exactly as locked.
if ! (cd tests/browser && npm ls --silent >/dev/null 2>&1); then
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets --locked -- -D warnings
# The end-to-end tests load the plugin .so files of this profile.
cargo build --release --workspace --locked
cargo test --release --workspace --locked
