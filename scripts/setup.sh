#!/usr/bin/env bash
# Idempotent set-up: a Python 3.12+ virtualenv in .venv, installed from the lock files.
#
#   scripts/setup.sh          what `make run` needs: the server (requirements.txt) and, when
#                             libvirt's headers are present, the agent's libvirt-python
#                             (requirements-agent.txt). No test tool, no system package.
#   scripts/setup.sh dev      the same, plus the test and development tools (requirements-dev.txt).
#   scripts/setup.sh test     dev, after (as root on Debian/Ubuntu) the system packages of the lab
#                             and the browser tests: what `make test` needs.
#   scripts/setup.sh lab      the same as plain, plus the lab's system packages (root).
#
# The lock files are made from pyproject.toml by `make lock` (uv) and list every package with its
# hashes; pip installs them as they are (--no-deps --require-hashes), so no machine needs uv.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
MODE=${1:-run}
case "$MODE" in run | dev | test | lab) ;; *) say "unknown mode $MODE (run, dev, test or lab)"; exit 2 ;; esac

# The lab's hypervisor side (and libvirt-dev, which libvirt-python builds against).
LAB_PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 libvirt-dev
              pkg-config gcc iproute2 bc busybox-static)
# The browser tests (headless Chromium), `systemd-analyze verify` of contrib/'s units, and what
# builds the oVirt SDK's C extension for the oVirt API's tests (libxml2-dev, libcurl, python3-dev).
TEST_PACKAGES=("${LAB_PACKAGES[@]}" chromium systemd libxml2-dev python3-dev)

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ "${FERRY_SKIP_APT:-0}" = 1 ]; then
        return 0
    fi
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
case "$MODE" in
    test) apt_install "${TEST_PACKAGES[@]}" ;;
    lab) apt_install "${LAB_PACKAGES[@]}" ;;
esac

# nginx, for `nginx -t` of contrib/nginx/ferry.conf: its package unpacked, never installed, so no
# web server is started on this machine.
NGINX_DIR=/var/cache/ferry-test/nginx
if [ "$MODE" = test ] && ! command -v nginx >/dev/null && [ ! -x "$NGINX_DIR/usr/sbin/nginx" ] &&
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${FERRY_SKIP_APT:-0}" != 1 ]; then
    say "fetching nginx (unpacked into $NGINX_DIR, not installed)"
    mkdir -p "$NGINX_DIR"
    (cd "$NGINX_DIR" && { apt-get download -q nginx >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download -q nginx >/dev/null 2>&1; }; } &&
        dpkg-deb -x nginx_*.deb . && rm -f nginx_*.deb) || say "could not fetch nginx: the nginx -t test will skip"
fi

find_python() {
    local candidate
    for candidate in "${FERRY_PYTHON:-}" python3.14 python3.13 python3.12 python3 \
        "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9]; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$candidate" 2>/dev/null || echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    PYTHON=$(find_python) || { say "Ferry needs Python 3.12 or newer (set FERRY_PYTHON=/path/to/python3.12)"; exit 1; }
    say "creating .venv with $PYTHON"
    rm -rf .venv
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi

# One lock file at a time, each only when it changed since it was last installed here.
install_lock() {
    local lock=$1 stamp_file=".venv/.ferry-lock-${1%.txt}" stamp
    stamp=$(sha256sum "$lock" | cut -c1-16)
    [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ] && return 0
    say "installing $lock"
    .venv/bin/pip install -q --no-deps --require-hashes -r "$lock"
    echo "$stamp" > "$stamp_file"
}
install_lock requirements.txt
if pkg-config --exists libvirt 2>/dev/null; then
    install_lock requirements-agent.txt
else
    say "libvirt's headers not found (libvirt-dev): skipping the agent's libvirt-python (web and API work without it)"
fi
case "$MODE" in dev | test) install_lock requirements-dev.txt ;; esac
# The official oVirt SDK, a test tool of the oVirt API (tests/ovirt_api/), builds a C extension:
# without a compiler and libxml2's headers its tests are skipped, loudly.
if [ "$MODE" = test ] && ! install_lock requirements-ovirt-sdk.txt; then
    say "could not build the oVirt SDK (needs gcc and libxml2-dev): its tests will be skipped"
fi

# The console scripts `ferry-agent` and `ferry`, for this checkout. `pip install .[agent]` makes the
# same ones on a hypervisor; here they are two small launchers rather than an editable install,
# which would pin one checkout's path into a .venv that may be moved or shared between checkouts:
# each launcher runs the checkout whose .venv/bin it is called from (a logical path, so a .venv
# that is a symbolic link still runs the checkout it is linked from). `python -I`: neither the
# caller's directory nor PYTHON* variables reach the agent's imports.
write_launcher() {
    local name=$1 call=$2 content
    content=$(cat <<LAUNCHER
#!/bin/sh
# $name: written by scripts/setup.sh; runs the checkout whose .venv/bin holds this file.
case \$0 in */*) bin=\${0%/*} ;; *) bin=. ;; esac
root=\$(cd "\$bin/../.." && pwd)
exec "\$root/.venv/bin/python" -I -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); $call' "\$root" "\$@"
LAUNCHER
)
    if [ "$(cat ".venv/bin/$name" 2>/dev/null)" != "$content" ]; then
        printf '%s\n' "$content" > ".venv/bin/$name"
        chmod 755 ".venv/bin/$name"
    fi
}
write_launcher ferry-agent 'sys.argv[0] = "ferry-agent"; from ferry_agent.cli import main; sys.exit(main())'
write_launcher ferry 'sys.argv[0] = "ferry"; from manage import ferry; ferry()'
