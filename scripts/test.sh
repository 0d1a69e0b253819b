#!/usr/bin/env bash
# Runs every test of marketfeed_exporter: the lint gate (rustfmt, clippy with warnings as errors), unit and
# integration tests against fake venues, and the external-tools tier (the real Prometheus tools, systemd-analyze,
# docker-compose, the Python validators, Chromium). Installs what it needs on a fresh Debian machine with Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# For tests/deploy.rs: systemd-analyze, docker-compose (only its offline `config`; no Docker engine is needed),
# strace and the venv module for the Python tools below.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v strace >/dev/null 2>&1 || need+=(strace)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# For tests/page.rs: the status page in a real headless browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]} from Debian's packages" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The deploy checks' Python tools, pinned in scripts/deploy-tools-requirements.txt, in a virtualenv outside the
# work tree so that fresh clones on the same machine reuse it; reinstalled whenever the pins change.
tools="${XDG_CACHE_HOME:-$HOME/.cache}/marketfeed_exporter/deploy-tools"
if ! cmp -s scripts/deploy-tools-requirements.txt "$tools/requirements.txt"; then
    echo "test.sh: installing the deploy checks' Python tools into $tools" >&2
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check --no-deps -r scripts/deploy-tools-requirements.txt
    cp scripts/deploy-tools-requirements.txt "$tools/requirements.txt"
fi
# tests/deploy.rs looks here first (and falls back to the same default path).
export DEPLOY_TOOLS_BIN="$tools/bin"

# The lint gate: formatting and every clippy warning fail the run before any test.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "test.sh: installing rustfmt and clippy" >&2
    rustup component add rustfmt clippy
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --features external-tools -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --features external-tools 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary, so a reader (or CI) sees the total without scrolling.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
