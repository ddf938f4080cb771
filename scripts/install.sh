#!/usr/bin/env bash
# Install gated on a booth in one step, upgrade it, or remove it. Run as root from a clone of
# the repository (or an unpacked source archive):
#
#   sudo ./scripts/install.sh                 # install, or upgrade an existing install
#   sudo ./scripts/install.sh --uninstall     # remove the units and the program, keep data
#   sudo ./scripts/install.sh --purge         # ... and the config, the state, the site key, the user
#
# What it does, and keeps:
# - the system user and group "gated" (home /var/lib/gated, no shell), in the groups of the
#   devices: dialout (serial ports), video (cameras), lp (/dev/usb/lp*), plugdev (USB readers);
# - a venv in /opt/gated with gated and the extras in GATED_EXTRAS (default "hall,usb"; add
#   "pcsc" for badge readers, "camera" for QR cameras), /usr/local/bin/gated pointing into it;
#   the only network it needs is the package registries (Debian's and PyPI);
# - /etc/gated root:gated 0750 with gated.toml copied from the example if there is none
#   (0640; it is never overwritten: edit it, then `gated check-config`), and the site key
#   (site.key, root:gated 0640) created if absent: copy one site's key to all its booths;
# - /var/lib/gated gated:gated 0750 (the state, the outbox): never touched by an upgrade;
# - the units gated.service and gated-hall.service, the udev rules; enabled when systemd runs
#   the machine (the daemon starts once the config passes check-config).
# An upgrade is the same command: the units are stopped, the program replaced, the units
# started again; config, state and outbox stay as they are.
#
# DESTDIR=/some/dir installs into that root instead of / (tests, packaging): users go into
# DESTDIR/etc/passwd (useradd --root), nothing is started, no package is installed.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
EXTRAS="${GATED_EXTRAS:-hall,usb}"
PYTHON="${PYTHON:-python3}"
PREFIX=/opt/gated
GROUPS_WANTED=(dialout video lp plugdev audio)
DEB_PACKAGES=(python3 python3-venv libusb-1.0-0)
MODE=install
case "${1:-}" in
    "") ;;
    --uninstall) MODE=uninstall ;;
    --purge) MODE=purge ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--uninstall|--purge]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
R="$DESTDIR"  # every path below is "$R/..."
systemd_running() { [ -z "$DESTDIR" ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; }
say() { echo "== $*"; }

# ---------------------------------------------------------------- users and groups
seed_root() {  # a staging root needs its own user database for useradd --root
    mkdir -p "$R/etc"
    if [ ! -e "$R/etc/passwd" ]; then
        echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
        echo "root:*:19000:0:99999:7:::" > "$R/etc/shadow"
        { echo "root:x:0:"; for g in "${GROUPS_WANTED[@]}"; do getent group "$g" | cut -d: -f1-3 | sed 's/$/:/'; done; } > "$R/etc/group"
        sed 's/^\([^:]*\):.*/\1:!::/' "$R/etc/group" > "$R/etc/gshadow"
        chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
    fi
}

ids_of() {  # uid and gid of the gated user in the target root
    awk -F: '$1 == "gated" {print $3 ":" $4}' "$R/etc/passwd"
}

make_user() {
    [ -n "$DESTDIR" ] && seed_root
    local root=()
    [ -n "$DESTDIR" ] && root=(--root "$R")
    local groups=()
    for g in "${GROUPS_WANTED[@]}"; do
        if grep -q "^$g:" "$R/etc/group"; then groups+=("$g"); fi
    done
    if ! grep -q "^gated:" "$R/etc/passwd"; then
        say "creating the system user gated"
        useradd "${root[@]}" --system --user-group --home-dir /var/lib/gated --no-create-home \
            --shell /usr/sbin/nologin --comment "gated booth daemon" gated
    fi
    local IFS=,
    usermod "${root[@]}" --append --groups "${groups[*]}" gated
}

# ---------------------------------------------------------------- install / upgrade
install_packages() {
    [ -n "$DESTDIR" ] && return 0
    local missing=()
    for p in "${DEB_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

install_program() {
    local venv="$R$PREFIX"
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the venv $PREFIX"
        "$PYTHON" -m venv "$venv"
    fi
    say "installing gated[$EXTRAS] into $PREFIX"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q --upgrade "$SRC[$EXTRAS]"
    mkdir -p "$R/usr/local/bin"
    ln -sfn "$PREFIX/bin/gated" "$R/usr/local/bin/gated"
}

install_files() {
    local ids uid gid
    ids="$(ids_of)"; uid="${ids%%:*}"; gid="${ids##*:}"
    install -d -m 0750 -o 0 -g "$gid" "$R/etc/gated"
    install -d -m 0750 -o "$uid" -g "$gid" "$R/var/lib/gated"
    if [ ! -e "$R/etc/gated/gated.toml" ]; then
        say "config: /etc/gated/gated.toml from the example: edit it, then gated check-config"
        install -m 0640 -o 0 -g "$gid" "$SRC/config/gated.example.toml" "$R/etc/gated/gated.toml"
    else
        say "config: /etc/gated/gated.toml kept as it is"
    fi
    install -m 0644 "$SRC/config/gated.example.toml" "$R/etc/gated/gated.example.toml"
    if [ ! -e "$R/etc/gated/site.key" ]; then
        say "site key: /etc/gated/site.key created (copy this file to every booth of the site)"
        "$R$PREFIX/bin/gated" keygen "$R/etc/gated/site.key" > /dev/null
    fi
    chown 0:"$gid" "$R/etc/gated/site.key"
    chmod 0640 "$R/etc/gated/site.key"
    install -d -m 0755 "$R/etc/systemd/system" "$R/etc/udev/rules.d" "$R/usr/share/doc/gated"
    install -m 0644 "$SRC/systemd/gated.service" "$SRC/systemd/gated-hall.service" \
        "$R/etc/systemd/system/"
    install -m 0644 "$SRC/systemd/99-gated.rules" "$R/etc/udev/rules.d/99-gated.rules"
    install -m 0644 "$SRC/README.md" "$R/usr/share/doc/gated/README.md"
}

stop_units() {
    systemd_running || return 0
    systemctl stop gated-hall.service gated.service 2>/dev/null || true
}

start_units() {
    if ! systemd_running; then
        if [ -n "$DESTDIR" ]; then say "not starting anything: staging root $DESTDIR"
        else say "not starting anything: systemd is not PID 1 here"; fi
        return 0
    fi
    systemctl daemon-reload
    udevadm control --reload 2>/dev/null && udevadm trigger 2>/dev/null || true
    systemctl enable gated.service gated-hall.service
    if "$PREFIX/bin/gated" check-config /etc/gated/gated.toml; then
        systemctl restart gated.service gated-hall.service
    else
        say "the config does not pass check-config yet: fix it, then systemctl start gated gated-hall"
    fi
}

# ---------------------------------------------------------------- uninstall
uninstall() {
    stop_units
    if systemd_running; then systemctl disable gated.service gated-hall.service 2>/dev/null || true; fi
    say "removing the units, the udev rules and $PREFIX"
    rm -f "$R/etc/systemd/system/gated.service" "$R/etc/systemd/system/gated-hall.service" \
        "$R/etc/udev/rules.d/99-gated.rules" "$R/usr/local/bin/gated"
    rm -rf "$R$PREFIX" "$R/usr/share/doc/gated"
    if systemd_running; then systemctl daemon-reload; fi
    if [ "$MODE" = purge ]; then
        say "purging /etc/gated, /var/lib/gated and the user gated"
        rm -rf "$R/etc/gated" "$R/var/lib/gated"
        local root=()
        [ -n "$DESTDIR" ] && root=(--root "$R")
        if grep -q "^gated:" "$R/etc/passwd" 2>/dev/null; then userdel "${root[@]}" gated; fi
        if grep -q "^gated:" "$R/etc/group" 2>/dev/null; then groupdel "${root[@]}" gated; fi
    else
        say "kept /etc/gated (config, site key) and /var/lib/gated (state, outbox): --purge removes them"
    fi
}

if [ "$MODE" != install ]; then
    uninstall
    exit 0
fi
install_packages
make_user
stop_units
install_program
install_files
start_units
say "done: $("$R$PREFIX/bin/gated" --version)"
