#!/usr/bin/env bash
# Idempotent set-up for `make run` and `make test`: a Python 3.12+ virtualenv in .venv with the
# pinned requirements, and (when root on Debian/Ubuntu) the system packages the tests and the lab use.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# gcc, libxml2-dev and python3-dev build the oVirt SDK's C extension (requirements-ovirt-sdk.txt, tests only).
SYSTEM_PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 libvirt-dev
                 pkg-config iproute2 bc busybox-static chromium gcc libxml2-dev python3-dev)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${FERRY_SKIP_APT:-0}" != 1 ]; then
    missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
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

want_agent=0
pkg-config --exists libvirt 2>/dev/null && want_agent=1
stamp=$(cat requirements.txt requirements-agent.txt requirements-ovirt-sdk.txt | sha256sum | cut -c1-16)-$want_agent
if [ "$(cat .venv/.ferry-requirements 2>/dev/null)" != "$stamp" ]; then
    say "installing Python requirements"
    .venv/bin/pip install -q -r requirements.txt
    if [ "$want_agent" = 1 ]; then
        .venv/bin/pip install -q -r requirements-agent.txt
    else
        say "libvirt-dev not found: skipping the host agent's libvirt-python (web and API work without it)"
    fi
    # The oVirt SDK is a test tool (tests/ovirt_api/); without a compiler its tests are skipped, loudly.
    if ! .venv/bin/pip install -q -r requirements-ovirt-sdk.txt; then
        say "could not build the oVirt SDK (needs gcc and libxml2-dev): its tests will be skipped"
    fi
    echo "$stamp" > .venv/.ferry-requirements
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
