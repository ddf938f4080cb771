#!/usr/bin/env bash
# Run a simulated booth: the real daemon against simulated gate, printer and ID-card reader on
# pty pairs, with a stream of simulated visitors. No broker needed: events wait in the outbox.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/gated ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-venv fonts-wqy-microhei
    fi
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e .
fi
exec .venv/bin/gated simulate "$@"
