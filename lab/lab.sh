#!/bin/bash
# lab/lab.sh - Ferry's real two-host libvirt/KVM lab on one machine (root, Linux).
#
#   lab/lab.sh up        start hosta + hostb and the guest "labvm" on hosta; they keep running
#   lab/lab.sh down      stop everything `up` started (exit 0 even when nothing is up)
#   lab/lab.sh status    exit 0 when the lab is up and healthy, 1 otherwise
#   lab/lab.sh guest [--host hosta|hostb] [--name N] [--mem MB] [--fill MB] [--dirty MB] [--vcpus N] [--replace]
#                        define + start a guest, wait for its heartbeat, print its UUID on stdout
#   lab/lab.sh rm-guest NAME     destroy + undefine a guest on every host
#   lab/lab.sh kill-host HOST [--qemu | --guest NAME]
#                        kill -9 one libvirtd (and all its QEMU processes, or the one of guest NAME)
#   lab/lab.sh start-host HOST           start that libvirtd again (it reconnects to its guests)
#
# Layout.  Two libvirtd daemons play two hypervisors, hosta (127.0.0.2) and hostb (127.0.0.3),
# both inside the private network namespace "ferrylab", which has nothing but `lo`: no packet of
# the lab ever leaves 127.0.0.0/8.  Each daemon also has its own mount + UTS namespace, where
# /etc/libvirt, /run and /var are bind-mounted from var/lab/<host>/{etc,run,var} of this
# repository, and its own hostname and host_uuid (libvirt refuses to migrate to "itself").
# Clients in the root namespace (Ferry, the tests) use each daemon's UNIX socket,
# qemu:///system?socket=var/lab/<host>/run/libvirt/libvirt-sock; only the source daemon needs
# qemu+tcp://127.0.0.x/system to reach its peer (peer-to-peer migration).  var/lab/state.json
# describes it all; var/lab/<host>/libvirtd.log is each daemon's live log (QEMU monitor traffic
# included, which is how a test proves zero-copy-send).  Migration TLS (VIR_MIGRATE_TLS) uses a
# private CA and per-host certificates in var/lab/pki/ (see ensure_pki).
#
# The guest is a Debian cloud kernel plus a busybox initramfs whose /init (lab/guest-init.sh)
# fills RAM and prints a heartbeat on the serial console.  The .deb files are fetched with
# `apt-get download` and unpacked, never installed, into /var/cache/ferry-lab/guest (reused by
# later runs).  It runs under TCG (domain type 'qemu'): KVM here cannot boot a stock kernel.
#
# Environment: LAB_GUEST_MEM_MB=512 LAB_FILL_MB=256 LAB_DIRTY_MB= (MiB re-dirtied per second)
#              LAB_NO_GUEST=1 (hosts only)  LAB_INSTALL=0 (never apt-get install missing packages)
#              LAB_BOOT_TIMEOUT=120 (seconds to wait for a guest's first heartbeat)
#              LAB_ID= (unset: the default lab, netns "ferrylab", state in var/lab/; ID: a second,
#              independent lab, netns "ferrylab-ID", state in var/lab-ID/, e.g. LAB_ID=bench for
#              the benchmarks; the same addresses and ports, which live inside each namespace)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VAR=$REPO/var/lab
NS=ferrylab
if [ -n "${LAB_ID:-}" ]; then   # an independent second lab (see LAB_ID above)
    [[ "$LAB_ID" =~ ^[a-z0-9]{1,12}$ ]] || { echo "lab.sh: LAB_ID must be 1-12 of [a-z0-9]" >&2; exit 2; }
    VAR=$REPO/var/lab-$LAB_ID
    NS=ferrylab-$LAB_ID
fi
STATE=$VAR/state.json
CACHE=/var/cache/ferry-lab/guest
GUEST_MNT=/var/lib/ferry-guest          # where each host's mount namespace sees $CACHE
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HOSTS=(hosta hostb)
declare -A ADDR=([hosta]=127.0.0.2 [hostb]=127.0.0.3)
declare -A HUUID=([hosta]=aaaaaaaa-0000-4000-8000-00000000000a [hostb]=bbbbbbbb-0000-4000-8000-00000000000b)
declare -A PORTS=([hosta]="49152 49183" [hostb]="49184 49215")
GUEST_MEM_MB=${LAB_GUEST_MEM_MB:-512}
FILL_MB=${LAB_FILL_MB:-256}
DIRTY_MB=${LAB_DIRTY_MB:-}
BOOT_TIMEOUT=${LAB_BOOT_TIMEOUT:-120}
T0=${EPOCHREALTIME/./}

# All progress goes to stderr: `lab.sh guest` prints only the UUID on stdout.
log() {
    local us=$((${EPOCHREALTIME/./} - T0))
    printf '[lab %s +%d.%02ds] %s\n' "$(date +%H:%M:%S)" $((us / 1000000)) $((us % 1000000 / 10000)) "$*" >&2
}
die() { log "FAILED: $*"; exit 1; }

hdir() { echo "$VAR/$1"; }
sock() { echo "$VAR/$1/run/libvirt/libvirt-sock"; }
uri() { echo "qemu:///system?socket=$(sock "$1")"; }
V() { local h=$1; shift; timeout 20 virsh -q -c "$(uri "$h")" "$@"; }
console_dir() { echo "$VAR/$1/var/log/libvirt/qemu"; }
logs_hint() { echo "logs: $VAR/<host>/libvirtd.log, $VAR/<host>/daemon.out, $VAR/<host>/var/log/libvirt/qemu/"; }

check_host_name() {
    case "${1:-}" in hosta | hostb) ;; *) die "unknown host '${1:-}' (hosta or hostb)" ;; esac
}

require_root() {
    [ "$(uname -s)" = Linux ] || die "the lab needs Linux (network, mount and UTS namespaces)"
    [ "$(id -u)" = 0 ] || die "the lab must run as root (it creates namespaces and runs libvirtd)"
}

lock() {   # one lab.sh at a time changes the lab
    mkdir -p "$VAR"
    exec 9>"$VAR/.lock"
    flock -w 300 9 || die "another lab/lab.sh holds $VAR/.lock"
}

# ------------------------------------------------------------------------------------ state.json
state_py() {   # run a python snippet with the state (dict) as `s`; it is saved back afterwards
    "$PY" - "$STATE" "$@" <<EOF
import json, os, sys
path, args = sys.argv[1], sys.argv[2:]
try:
    with open(path) as f:
        s = json.load(f)
except FileNotFoundError:
    s = {}
$(cat)
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(s, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, path)
EOF
}

write_state_hosts() {
    local a=() h
    for h in "${HOSTS[@]}"; do
        a+=("$h" "${ADDR[$h]}" "${HUUID[$h]}" "${PORTS[$h]% *}" "${PORTS[$h]#* }" "$(uri "$h")"
            "$VAR/$h/libvirtd.log" "$(console_dir "$h")" "$VAR/$h" "$(reaper_pid "$h")" "$(daemon_pid "$h")")
    done
    state_py "$NS" "$VAR" "$REPO" "${a[@]}" <<'EOF'
import time
ns, var, repo, rest = args[0], args[1], args[2], args[3:]
s.setdefault("guests", {})
s.setdefault("guest", None)
s.update(version=1, namespace=ns, dir=var, repo=repo,
         started_at=s.get("started_at") or time.strftime("%Y-%m-%dT%H:%M:%S%z"))
hosts = s.setdefault("hosts", {})
pids = []
for i in range(0, len(rest), 11):
    name, addr, huuid, pmin, pmax, uri, log, cdir, hdir, reaper, daemon = rest[i:i + 11]
    hosts[name] = {
        "name": name, "address": addr, "host_uuid": huuid, "hostname": name + ".ferrylab",
        "libvirt_uri": uri, "peer_uri": "qemu+tcp://%s/system" % addr,
        "migrate_uri": "tcp://%s" % addr, "migration_ports": [int(pmin), int(pmax)],
        "log": log, "console_dir": cdir, "dir": hdir, "tls_x509_dir": var + "/pki/" + name,
        "pids": {"reaper": int(reaper) if reaper else None, "libvirtd": int(daemon) if daemon else None},
    }
    pids += [int(p) for p in (reaper, daemon) if p]
s["pids"] = pids
s["pki"] = {"dir": var + "/pki", "ca_cert": var + "/pki/ca/ca-cert.pem"}
EOF
}

write_state_guest() {   # name uuid host mem fill dirty vcpus
    local a=("$@") h
    for h in "${HOSTS[@]}"; do a+=("$h" "$(console_dir "$h")/$1-console.log"); done
    state_py "${a[@]}" <<'EOF'
name, uuid, host, mem, fill, dirty, vcpus = args[:7]
consoles = dict(zip(args[7::2], args[8::2]))
g = {"name": name, "uuid": uuid, "host": host, "memory_mib": int(mem), "vcpus": int(vcpus),
     "fill_mib": int(fill), "dirty_mib": int(dirty) if dirty else 0, "console_logs": consoles}
s.setdefault("guests", {})[name] = g
if name == "labvm":
    s["guest"] = g
EOF
}

forget_guest() {
    [ -f "$STATE" ] || return 0
    state_py "$1" <<'EOF'
s.get("guests", {}).pop(args[0], None)
if args[0] == "labvm":
    s["guest"] = None
EOF
}

# ---------------------------------------------------------------------------------- processes
reaper_pid() { cat "$VAR/$1/reaper.pid" 2>/dev/null || true; }
daemon_pid() { cat "$VAR/$1/run/libvirt/libvirtd.pid" 2>/dev/null || true; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
is_libvirtd() { [ -n "${1:-}" ] && grep -qa libvirtd "/proc/$1/cmdline" 2>/dev/null; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$NS"; }   # exact: not ferrylab-<id>

host_healthy() {   # host: daemon process alive and answering on its UNIX socket
    is_libvirtd "$(daemon_pid "$1")" && timeout 10 virsh -q -c "$(uri "$1")" version >/dev/null 2>&1
}

lab_healthy() {
    [ -f "$STATE" ] && ns_exists || return 1
    local h
    for h in "${HOSTS[@]}"; do host_healthy "$h" || return 1; done
}

anything_up() {
    ns_exists && return 0
    [ -f "$STATE" ] && return 0
    local h
    for h in "${HOSTS[@]}"; do
        alive "$(reaper_pid "$h")" && return 0
        is_libvirtd "$(daemon_pid "$h")" && return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------- dependencies
ensure_deps() {
    local pkgs=()
    command -v libvirtd >/dev/null || [ -x /usr/sbin/libvirtd ] || pkgs+=(libvirt-daemon libvirt-daemon-driver-qemu)
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
        [ -n "$(find /usr/lib -name 'libvirt_driver_qemu.so' -print -quit 2>/dev/null)" ] ||
        pkgs+=(libvirt-daemon-driver-qemu)
    command -v virsh >/dev/null || pkgs+=(libvirt-clients)
    command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
    command -v ip >/dev/null || pkgs+=(iproute2)
    command -v unshare >/dev/null && command -v flock >/dev/null || pkgs+=(util-linux)
    [ -x "$PY" ] || command -v python3 >/dev/null || pkgs+=(python3)
    if [ ${#pkgs[@]} -gt 0 ]; then
        [ "${LAB_INSTALL:-1}" = 1 ] || die "missing packages: ${pkgs[*]} (LAB_INSTALL=0)"
        log "apt-get install ${pkgs[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
            die "apt-get install ${pkgs[*]} failed"
    fi
    # The QEMU driver of a privileged libvirtd looks up its compiled-in user and group
    # (libvirt-qemu, kvm) even with user = "root" in qemu.conf.  libvirt-daemon-system would create
    # them but pulls in systemd, so we create them ourselves.
    getent group kvm >/dev/null || groupadd -r kvm
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
    getent passwd libvirt-qemu >/dev/null ||
        useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -M -s /usr/sbin/nologin libvirt-qemu
}

apt_download() {   # apt_download DIR PKG...  (refreshes the package lists once if needed)
    local dir=$1; shift
    (cd "$dir" && apt-get download -q "$@" >"$dir/apt.out" 2>&1) && return 0
    log "apt-get download $* failed; running apt-get update and trying again"
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$dir" && apt-get download -q "$@" >"$dir/apt.out" 2>&1) ||
        die "apt-get download $* failed: $(tail -3 "$dir/apt.out")"
}

ensure_guest_files() {
    mkdir -p "$CACHE"
    if [ ! -s "$CACHE/vmlinuz" ] || [ ! -x "$CACHE/busybox" ]; then
        log "fetching the guest kernel and busybox into $CACHE (apt-get download, unpacked only)"
        local dl kpkg
        dl=$(mktemp -d /tmp/ferry-lab-dl.XXXXXX)
        kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
            awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
        if [ -z "$kpkg" ]; then
            apt-get update -qq >/dev/null 2>&1 || true
            kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
                awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
        fi
        [ -n "$kpkg" ] || die "cannot find the package behind linux-image-cloud-amd64 (apt-cache depends)"
        apt_download "$dl" "$kpkg" busybox-static
        dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb | tar -xO --wildcards './boot/vmlinuz-*' >"$CACHE/vmlinuz.new"
        dpkg-deb --fsys-tarfile "$dl"/busybox-static_*.deb | tar -xO ./bin/busybox >"$CACHE/busybox.new"
        if [ ! -s "$CACHE/vmlinuz.new" ] || [ ! -s "$CACHE/busybox.new" ]; then
            die "unpacking $dl/*.deb failed"
        fi
        chmod 755 "$CACHE/busybox.new"
        mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
        mv "$CACHE/busybox.new" "$CACHE/busybox"
        echo "$kpkg" >"$CACHE/kernel-package"
        rm -rf "$dl"
    fi
    # The initramfs is rebuilt whenever lab/guest-init.sh (or busybox) changes.
    local sum
    sum=$(cat "$HERE/guest-init.sh" "$CACHE/busybox" | sha256sum | awk '{print $1}')
    if [ ! -s "$CACHE/initrd.gz" ] || [ "$(cat "$CACHE/initrd.sha256" 2>/dev/null)" != "$sum" ]; then
        log "building the guest initramfs from lab/guest-init.sh"
        local root
        root=$(mktemp -d /tmp/ferry-lab-initrd.XXXXXX)
        mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/fill"
        cp "$CACHE/busybox" "$root/bin/busybox"
        cp "$HERE/guest-init.sh" "$root/init"
        chmod 755 "$root/init" "$root/bin/busybox"
        (cd "$root" && find . | "$CACHE/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$CACHE/initrd.gz.new")
        mv "$CACHE/initrd.gz.new" "$CACHE/initrd.gz"
        echo "$sum" >"$CACHE/initrd.sha256"
        rm -rf "$root"
    fi
}

# ---------------------------------------------------------------------------------- TLS (PKI)
# Migration encryption (VIR_MIGRATE_TLS): QEMU's migration stream runs over TLS with x509
# certificates that both ends verify.  A private CA (var/lab/pki/ca/) signs one certificate per
# host, valid as TLS server and client, for IP:127.0.0.x and DNS:<host>.ferrylab.  Each host's
# var/lab/pki/<host>/ is the x509 folder QEMU reads (ca-cert.pem; server-cert.pem and
# server-key.pem for an incoming migration, client-cert.pem and client-key.pem for an outgoing
# one); qemu.conf points migrate_tls_x509_cert_dir and default_tls_x509_cert_dir at it.  Made once
# and reused; made again when a file is missing or does not verify, a certificate expires within
# 30 days, or the layout (PKI_VERSION, addresses) changed.
PKI=$VAR/pki
PKI_VERSION=1
PKI_FILES=(ca-cert.pem server-cert.pem server-key.pem client-cert.pem client-key.pem)

pki_stamp() {
    local h out="v$PKI_VERSION"
    for h in "${HOSTS[@]}"; do out+=" $h=${ADDR[$h]}"; done
    echo "$out"
}

pki_ok() {
    local h f
    [ "$(cat "$PKI/stamp" 2>/dev/null)" = "$(pki_stamp)" ] || return 1
    openssl x509 -noout -checkend 2592000 -in "$PKI/ca/ca-cert.pem" >/dev/null 2>&1 || return 1
    for h in "${HOSTS[@]}"; do
        for f in "${PKI_FILES[@]}"; do [ -s "$PKI/$h/$f" ] || return 1; done
        cmp -s "$PKI/ca/ca-cert.pem" "$PKI/$h/ca-cert.pem" || return 1
        openssl x509 -noout -checkend 2592000 -in "$PKI/$h/server-cert.pem" >/dev/null 2>&1 || return 1
        openssl verify -purpose sslserver -CAfile "$PKI/ca/ca-cert.pem" "$PKI/$h/server-cert.pem" \
            >/dev/null 2>&1 || return 1
        openssl verify -purpose sslclient -CAfile "$PKI/ca/ca-cert.pem" "$PKI/$h/client-cert.pem" \
            >/dev/null 2>&1 || return 1
    done
}

ensure_pki() {
    pki_ok && return 0
    command -v openssl >/dev/null || die "openssl is missing (needed for the migration TLS certificates)"
    log "creating the lab's CA and the hosts' TLS certificates in $PKI"
    local tmp h out
    rm -rf "$PKI"
    tmp=$PKI/.new
    mkdir -p "$tmp/ca"
    chmod 700 "$PKI" "$tmp"
    out=$tmp/openssl.out
    cat >"$tmp/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = Ferry lab
CN = Ferry lab CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[host]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::LAB_SAN
CNF
    LAB_SAN=none openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -config "$tmp/openssl.cnf" -extensions ca \
        -keyout "$tmp/ca/ca-key.pem" -out "$tmp/ca/ca-cert.pem" >"$out" 2>&1 ||
        die "openssl: creating the CA failed: $(tail -3 "$out")"
    for h in "${HOSTS[@]}"; do
        mkdir -p "$tmp/$h"
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/$h/server-key.pem" >"$out" 2>&1 ||
            die "openssl: the key of $h failed: $(tail -3 "$out")"
        LAB_SAN=none openssl req -new -key "$tmp/$h/server-key.pem" -config "$tmp/openssl.cnf" \
            -subj "/O=Ferry lab/CN=$h.ferrylab" -out "$tmp/$h/req.pem" >"$out" 2>&1 ||
            die "openssl: the certificate request of $h failed: $(tail -3 "$out")"
        LAB_SAN="IP:${ADDR[$h]}, DNS:$h.ferrylab" openssl x509 -req -sha256 -days 825 \
            -in "$tmp/$h/req.pem" -CA "$tmp/ca/ca-cert.pem" -CAkey "$tmp/ca/ca-key.pem" \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$tmp/openssl.cnf" -extensions host \
            -out "$tmp/$h/server-cert.pem" >"$out" 2>&1 ||
            die "openssl: signing the certificate of $h failed: $(tail -3 "$out")"
        rm -f "$tmp/$h/req.pem"
        # one certificate for both roles: the source QEMU is the TLS client, the destination's the server
        cp "$tmp/$h/server-cert.pem" "$tmp/$h/client-cert.pem"
        cp "$tmp/$h/server-key.pem" "$tmp/$h/client-key.pem"
        cp "$tmp/ca/ca-cert.pem" "$tmp/$h/ca-cert.pem"
        chmod 600 "$tmp/$h"/*-key.pem
    done
    chmod 600 "$tmp/ca/ca-key.pem"
    rm -f "$out" "$tmp/openssl.cnf"
    mv "$tmp"/* "$PKI"/
    rmdir "$tmp"
    pki_stamp >"$PKI/stamp"
    pki_ok || die "the new certificates in $PKI do not verify"
    log "TLS certificates: $PKI/<host>/{$(IFS=,; echo "${PKI_FILES[*]}")}"
}

# ---------------------------------------------------------------------------------- hosts
prepare_host() {   # fresh per-host folder with its configuration
    local N=$1 H
    H=$(hdir "$1")
    rm -rf "$H"
    mkdir -p "$H/etc" "$H/run/libvirt" "$H/run/lock" "$H/var/lib/libvirt" "$H/var/cache/libvirt" \
        "$H/var/log/libvirt/qemu" "$H/var/tmp" "$H/var/lib/ferry-guest"
    ln -s /run "$H/var/run"
    ln -s /run/lock "$H/var/lock"
    ln -s var/log/libvirt/libvirtd.log "$H/libvirtd.log"    # the live log at var/lab/<host>/libvirtd.log
    [ -f /etc/libvirt/libvirt.conf ] && cp /etc/libvirt/libvirt.conf "$H/etc/"
    cat >"$H/etc/libvirtd.conf" <<EOF
# Ferry lab host $N (generated by lab/lab.sh): TCP without auth, lab only.
listen_tls = 0
listen_tcp = 1
listen_addr = "${ADDR[$N]}"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "${HUUID[$N]}"
# QEMU monitor traffic at info level: proves e.g. "capability":"zero-copy-send","state":true
log_filters = "2:qemu.qemu_monitor 3:*"
log_outputs = "2:file:/var/log/libvirt/libvirtd.log"
EOF
    cat >"$H/etc/qemu.conf" <<EOF
# Ferry lab host $N (generated by lab/lab.sh).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# no virtlogd: QEMU output goes straight to files
stdio_handler = "file"
# no cgroups: two daemons would fight over one machine cgroup, and the memtune hard_limit
# trick for zero-copy (see lab.sh guest) would become a real memory limit
cgroup_controllers = [ ]
namespaces = [ ]
migration_address = "${ADDR[$N]}"
migration_host = "${ADDR[$N]}"
migration_port_min = ${PORTS[$N]% *}
migration_port_max = ${PORTS[$N]#* }
# migration encryption (VIR_MIGRATE_TLS): the lab CA and this host's certificate (ensure_pki);
# each end verifies the other's certificate
default_tls_x509_cert_dir = "$PKI/$N"
default_tls_x509_verify = 1
migrate_tls_x509_cert_dir = "$PKI/$N"
migrate_tls_x509_verify = 1
EOF
}

spawn_host() {   # start one libvirtd (folder already prepared) under lab/reaper.py, detached
    local N=$1 H s
    H=$(hdir "$1")
    s=$(sock "$N")
    [ ${#s} -lt 100 ] || die "socket path too long for a UNIX socket (${#s} chars): $s; move the repository"
    rm -f "$H/run/libvirt/libvirtd.pid"
    # The per-host guest mount is made inside the host's private mount namespace before /var is
    # replaced, and carried along by --rbind.
    setsid "$PY" "$HERE/reaper.py" ip netns exec "$NS" unshare --mount --uts --propagation private \
        /bin/sh -c "set -e
            hostname $N.ferrylab
            mount --bind '$CACHE' '$H/var/lib/ferry-guest'
            mount --bind '$H/etc' /etc/libvirt
            mount --bind '$H/run' /run
            mount --rbind '$H/var' /var
            exec /usr/sbin/libvirtd --listen --pid-file /run/libvirt/libvirtd.pid" \
        </dev/null >>"$H/daemon.out" 2>&1 9>&- &
    echo $! >"$H/reaper.pid"
}

wait_host() {
    local N=$1 i
    for i in $(seq 300); do
        if timeout 5 virsh -q -c "$(uri "$N")" version >/dev/null 2>&1; then return 0; fi
        alive "$(reaper_pid "$N")" || break
        sleep 0.1
    done
    log "libvirtd of $N did not come up; daemon output:"
    tail -n 20 "$VAR/$N/daemon.out" >&2 || true
    tail -n 20 "$VAR/$N/libvirtd.log" >&2 2>/dev/null || true
    die "libvirtd of $N (${ADDR[$N]}) did not answer on $(sock "$N"); $(logs_hint)"
}

# ---------------------------------------------------------------------------------- guests
domain_host() {   # print the hosts where domain $1 is defined
    local h
    for h in "${HOSTS[@]}"; do
        host_healthy "$h" || continue
        V "$h" domuuid "$1" >/dev/null 2>&1 && echo "$h"
    done
    return 0
}

remove_guest() {
    local name=$1 h
    for h in "${HOSTS[@]}"; do
        [ -S "$(sock "$h")" ] || continue
        V "$h" destroy "$name" >/dev/null 2>&1 || true
        V "$h" undefine "$name" >/dev/null 2>&1 || true
    done
}

start_guest() {   # host name mem fill dirty [vcpus]
    local host=$1 name=$2 mem=$3 fill=$4 dirty=$5 vcpus=${6:-1} xml memtune="" ml con h i
    xml=$VAR/guests/$name.xml
    mkdir -p "$VAR/guests"
    # Zero-copy makes libvirt raise QEMU's RLIMIT_MEMLOCK to the guest size, which needs
    # CAP_SYS_RESOURCE; a sandbox may lack it ("cannot limit locked memory").  libvirt skips that
    # when the current limit already covers <memtune><hard_limit>, so the lab declares exactly the
    # current limit (harmless: cgroups are off, so nothing enforces it).
    ml=$(ulimit -l)
    [ "$ml" != unlimited ] && memtune="<memtune><hard_limit unit='KiB'>$ml</hard_limit></memtune>"
    cat >"$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$mem</memory>
  <vcpu>$vcpus</vcpu>
  $memtune
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST_MNT/vmlinuz</kernel>
    <initrd>$GUEST_MNT/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 fill_mb=$fill${dirty:+ dirty_mb=$dirty}</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='pty'><log file='/var/log/libvirt/qemu/$name-console.log' append='on'/></serial>
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
    for h in "${HOSTS[@]}"; do rm -f "$(console_dir "$h")/$name-console.log"; done
    V "$host" define "$xml" >/dev/null || die "virsh define $xml on $host failed; $(logs_hint)"
    if ! V "$host" start "$name" >/dev/null; then
        tail -n 5 "$(console_dir "$host")/$name.log" >&2 2>/dev/null || true
        die "virsh start $name on $host failed; QEMU log: $(console_dir "$host")/$name.log"
    fi
    con=$(console_dir "$host")/$name-console.log
    log "guest $name started on $host ($mem MiB, fill $fill MiB${dirty:+, dirty $dirty MiB/s}$([ "$vcpus" = 1 ] || echo ", $vcpus vCPUs")); waiting for its heartbeat"
    for i in $(seq $((BOOT_TIMEOUT * 10))); do
        grep -q 'GUEST: tick' "$con" 2>/dev/null && break
        if [ $((i % 20)) = 0 ] && [ "$(V "$host" domstate "$name" 2>/dev/null)" != running ]; then
            die "guest $name stopped while booting; console: $con, QEMU log: $(console_dir "$host")/$name.log"
        fi
        sleep 0.1
    done
    grep -q 'GUEST: tick' "$con" 2>/dev/null ||
        die "no heartbeat from $name within ${BOOT_TIMEOUT}s: $(tail -n 3 "$con" 2>/dev/null | tr '\n' ' ') (console $con)"
    GUEST_UUID=$(V "$host" domuuid "$name")
    write_state_guest "$name" "$GUEST_UUID" "$host" "$mem" "$fill" "$dirty" "$vcpus"
    log "guest $name is up on $host, uuid $GUEST_UUID, console $con"
}

# ---------------------------------------------------------------------------------- teardown
do_down() {
    local h p f i
    for h in "${HOSTS[@]}"; do   # guests first, while the daemons still answer
        host_healthy "$h" || continue
        for d in $(V "$h" list --all --name 2>/dev/null); do
            V "$h" destroy "$d" >/dev/null 2>&1 || true
            V "$h" undefine "$d" >/dev/null 2>&1 || true
        done
    done
    for h in "${HOSTS[@]}"; do   # SIGTERM to the reaper is forwarded to libvirtd
        p=$(reaper_pid "$h"); alive "$p" && kill -TERM "$p" 2>/dev/null || true
        p=$(daemon_pid "$h"); is_libvirtd "$p" && kill -TERM "$p" 2>/dev/null || true
    done
    for i in $(seq 50); do
        local busy=0
        for h in "${HOSTS[@]}"; do
            alive "$(reaper_pid "$h")" && busy=1
            is_libvirtd "$(daemon_pid "$h")" && busy=1
        done
        [ $busy = 0 ] && break
        sleep 0.1
    done
    for h in "${HOSTS[@]}"; do
        p=$(reaper_pid "$h"); alive "$p" && { log "killing reaper $p of $h"; kill -KILL "$p" 2>/dev/null || true; }
        p=$(daemon_pid "$h"); is_libvirtd "$p" && { log "killing libvirtd $p of $h"; kill -KILL "$p" 2>/dev/null || true; }
        for f in "$VAR/$h"/run/libvirt/qemu/*.pid; do   # QEMU left behind, by pid file
            [ -f "$f" ] || continue
            p=$(cat "$f")
            if grep -qa qemu-system "/proc/$p/cmdline" 2>/dev/null; then
                log "killing leftover QEMU $p ($f)"
                kill -KILL "$p" || true
            fi
        done
    done
    if ns_exists; then   # anything else still inside the lab's network namespace
        for i in $(seq 50); do
            p=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
            [ -z "${p// /}" ] && break
            [ "$i" = 1 ] && log "killing leftover processes in netns $NS: $p"
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL $p 2>/dev/null || true
            sleep 0.1
        done
        ip netns del "$NS" 2>/dev/null || log "warning: ip netns del $NS failed"
    fi
    for h in "${HOSTS[@]}"; do rm -f "$VAR/$h/reaper.pid" "$VAR/$h/run/libvirt/libvirtd.pid"; done
    rm -f "$STATE"
}

# ---------------------------------------------------------------------------------- commands
up_failed() {   # EXIT trap of `up`: a failed start leaves nothing running (logs stay)
    local rc=$?
    if [ "$rc" != 0 ]; then
        log "up failed; tearing down (logs kept in $VAR)"
        do_down
    fi
}

cmd_up() {
    require_root
    lock
    if lab_healthy; then
        log "lab is already up ($(uri hosta), $(uri hostb))"
        if [ "${LAB_NO_GUEST:-}" != 1 ] && [ -z "$(domain_host labvm)" ]; then
            ensure_guest_files
            start_guest hosta labvm "$GUEST_MEM_MB" "$FILL_MB" "$DIRTY_MB"
        fi
        return 0
    fi
    if anything_up; then
        log "lab is half-up; tearing it down first"
        do_down
    fi
    trap up_failed EXIT
    ensure_deps
    [ "${LAB_NO_GUEST:-}" = 1 ] || ensure_guest_files
    mkdir -p "$CACHE"   # mounted into each host even with LAB_NO_GUEST=1 (lab.sh guest later)
    ensure_pki
    log "libvirt $(libvirtd --version | awk '{print $NF}'), $(qemu-system-x86_64 --version | head -1)"
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    local h
    for h in "${HOSTS[@]}"; do prepare_host "$h"; spawn_host "$h"; done
    for h in "${HOSTS[@]}"; do wait_host "$h"; done
    write_state_hosts
    log "hosts up in netns $NS: hosta ${ADDR[hosta]} ($(sock hosta)), hostb ${ADDR[hostb]} ($(sock hostb))"
    if [ "${LAB_NO_GUEST:-}" != 1 ]; then
        start_guest hosta labvm "$GUEST_MEM_MB" "$FILL_MB" "$DIRTY_MB"
    fi
    trap - EXIT
    log "lab is up; state in $STATE; stop it with lab/lab.sh down"
}

cmd_down() {
    [ "$(id -u)" = 0 ] || die "lab/lab.sh down must run as root"
    lock
    if ! anything_up; then
        log "lab is not up"
        return 0
    fi
    do_down
    log "lab is down (logs kept in $VAR/<host>/)"
}

cmd_status() {
    if lab_healthy; then
        local h d
        for h in "${HOSTS[@]}"; do
            d=$(V "$h" list --all --name 2>/dev/null | tr '\n' ' ')
            echo "$h ${ADDR[$h]} up (libvirtd $(daemon_pid "$h")): ${d:-no guests}"
        done
        echo "lab is up ($STATE)"
        return 0
    fi
    if anything_up; then echo "lab is half-up (run lab/lab.sh down, or up again)"; else echo "lab is down"; fi
    return 1
}

cmd_guest() {
    local host=hosta name=labvm mem=$GUEST_MEM_MB fill=$FILL_MB dirty=$DIRTY_MB vcpus=1 replace=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --host) host=$2; shift 2 ;;
            --name) name=$2; shift 2 ;;
            --mem) mem=$2; shift 2 ;;
            --fill) fill=$2; shift 2 ;;
            --dirty) dirty=$2; shift 2 ;;
            --vcpus) vcpus=$2; shift 2 ;;
            --replace) replace=1; shift ;;
            *) die "guest: unknown option $1" ;;
        esac
    done
    check_host_name "$host"
    [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "guest: bad name '$name'"
    [[ "$mem$fill${dirty:-0}" =~ ^[0-9]+$ ]] || die "guest: --mem, --fill and --dirty take MiB numbers"
    [[ "$vcpus" =~ ^[1-9][0-9]?$ ]] || die "guest: --vcpus takes a number from 1 to 99"
    [ "$fill" -le $((mem - 128)) ] || die "guest: --fill $fill does not fit in --mem $mem (keep 128 MiB free)"
    require_root
    lock
    lab_healthy || die "the lab is not up (lab/lab.sh up)"
    local where
    where=$(domain_host "$name" | head -1)
    if [ -n "$where" ] && [ "$replace" = 0 ] && [ "$(V "$where" domstate "$name" 2>/dev/null)" = running ]; then
        GUEST_UUID=$(V "$where" domuuid "$name")
        log "guest $name is already running on $where (use --replace for a fresh one)"
        echo "$GUEST_UUID"
        return 0
    fi
    [ -n "$where" ] && { log "removing the old $name from $where"; remove_guest "$name"; }
    ensure_guest_files
    start_guest "$host" "$name" "$mem" "$fill" "$dirty" "$vcpus"
    echo "$GUEST_UUID"
}

cmd_rm_guest() {
    [ -n "${1:-}" ] || die "usage: lab/lab.sh rm-guest NAME"
    require_root
    lock
    remove_guest "$1"
    forget_guest "$1"
    log "guest $1 removed"
}

cmd_kill_host() {   # HOST [--qemu | --guest NAME]
    local host=${1:-} qemu="" p f
    check_host_name "$host"
    case "${2:-}" in
        "") ;;
        --qemu) qemu="*" ;;
        --guest) qemu=${3:?kill-host: --guest needs a guest name} ;;
        *) die "kill-host: unknown option $2 (--qemu or --guest NAME)" ;;
    esac
    require_root
    lock
    p=$(daemon_pid "$host")
    is_libvirtd "$p" || die "libvirtd of $host is not running"
    kill -KILL "$p"
    for f in $(seq 50); do is_libvirtd "$p" || break; sleep 0.1; done
    log "killed libvirtd $p of $host"
    if [ -n "$qemu" ]; then
        # shellcheck disable=SC2231 # $qemu is "*" (every guest) or one guest's name
        for f in "$VAR/$host"/run/libvirt/qemu/$qemu.pid; do
            [ -f "$f" ] || continue
            p=$(cat "$f")
            if grep -qa qemu-system "/proc/$p/cmdline" 2>/dev/null; then
                kill -KILL "$p" || true
                log "killed QEMU $p ($(basename "$f" .pid)) of $host"
            fi
        done
    fi
    return 0
}

cmd_start_host() {
    local host=${1:-}
    check_host_name "$host"
    require_root
    lock
    if ! ns_exists || [ ! -f "$STATE" ]; then die "the lab is not up (lab/lab.sh up)"; fi
    if host_healthy "$host"; then
        log "libvirtd of $host is already running"
        return 0
    fi
    alive "$(reaper_pid "$host")" && kill -KILL "$(reaper_pid "$host")" 2>/dev/null || true
    spawn_host "$host"
    wait_host "$host"
    write_state_hosts
    log "libvirtd of $host is up again (pid $(daemon_pid "$host"))"
}

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    guest) shift; cmd_guest "$@" ;;
    rm-guest) shift; cmd_rm_guest "$@" ;;
    kill-host) shift; cmd_kill_host "$@" ;;
    start-host) shift; cmd_start_host "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
