#!/usr/bin/env bash
# Install everything gated's tests need on a fresh Debian machine, then run ruff, mypy, the
# import-layer contracts and pytest.
# Run as root (or with sudo available). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(python3 python3-venv python3-dev gcc mosquitto postgresql pcscd vsmartcard-vpcd swig
              libpcsclite-dev pkg-config fonts-wqy-microhei libusb-1.0-0
              chromium espeak-ng sox  # the hall's screens: browser tests, voice, audio checks
              nodejs)  # scripts/sign-command.mjs, the second implementation of the signature
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PY" -m venv .venv
fi
echo "== installing gated with test extras"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check gated drivers tests bench bench/run
echo "== mypy"
.venv/bin/mypy
echo "== import layers (pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports
echo "== pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
