"""ferry_agent/virt.py against the real two-host libvirt lab (lab/lab.sh): no mocks, no database.

The lab tests share one lab for the session (tests/lab_fixtures.py) and are skipped, loudly,
where it cannot run.  The guest "labvm" moves between the hosts; the tests find it wherever it is.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferry_agent import virt

BASE_FLAGS = [
    "VIR_MIGRATE_LIVE",
    "VIR_MIGRATE_PEER2PEER",
    "VIR_MIGRATE_PERSIST_DEST",
    "VIR_MIGRATE_UNDEFINE_SOURCE",
]
ZEROCOPY_FLAGS = [*BASE_FLAGS, "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"]
ZEROCOPY_EVIDENCE = '"capability":"zero-copy-send","state":true'
# Ferry's plan with migration encryption on: TLS + parallel, never zero-copy
TLS_FLAGS = [*BASE_FLAGS, "VIR_MIGRATE_AUTO_CONVERGE", "VIR_MIGRATE_TLS", "VIR_MIGRATE_PARALLEL"]
ZEROCOPY_TLS_REFUSED = "Zero copy only available for non-compressed non-TLS multifd migration"
# the source QEMU's migration parameters name a tls-creds-x509 object and the peer to verify
TLS_EVIDENCE = re.compile(
    r'"execute":"migrate-set-parameters","arguments":\{"tls-creds":"(\w+)","tls-hostname":"([^"]+)"'
)
TICK = re.compile(rb"GUEST: tick (\d+)")
CAPABILITY_KEYS = {
    "libvirt_version",
    "qemu_version",
    "agent_version",
    "zerocopy_migrations",
    "parallel_migrations",
    "cpu_count",
    "memory_mib",
    "link_speed_mbps",
}
ABSENT_SOCKET = "qemu:///system?socket=/nonexistent/ferry-test/libvirt-sock"


# ------------------------------------------------------------------------------ helpers
def last_tick(path: str) -> int:
    try:
        ticks = TICK.findall(Path(path).read_bytes())
    except FileNotFoundError:
        return 0
    return max((int(t) for t in ticks), default=0)


def wait_tick_above(path: str, above: int, timeout: float = 20.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tick = last_tick(path)
        if tick > above:
            return tick
        time.sleep(0.1)
    raise AssertionError(f"no heartbeat above tick {above} in {path} within {timeout} s")


def log_since(path: str, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(path: str) -> int:
    return os.path.getsize(path)


def location(lab, uuid: str) -> tuple[str | None, dict[str, str | None]]:
    """(host where the domain is active, {host: state}) for a guest."""
    states = {name: virt.domain_state(lab.uri(name), uuid, timeout=10) for name in lab["hosts"]}
    active = [name for name, state in states.items() if state in ("up", "paused", "migrating")]
    return (active[0] if len(active) == 1 else None), states


def labvm(lab) -> tuple[dict, str]:
    """The lab's main guest, started again if it is gone, and the host it runs on."""
    entry = lab.guest("labvm", replace=False)
    host, states = location(lab, entry["uuid"])
    assert host, f"labvm is not running on exactly one host: {states}"
    return entry, host


def migrate(lab, uuid: str, src: str, dst: str, flags: list[str], **kwargs) -> tuple[dict, list[dict], float]:
    reports: list[dict] = []
    options = {
        "params": {},
        "schedule": {},
        "timeout": 60.0,
        "on_progress": reports.append,
        "should_cancel": lambda: False,
        "poll_interval": 0.2,
        "pulse_s": 1.0,  # the schedule's pulse, 10 s in production, short for a short guest
    }
    options.update(kwargs)
    t = time.monotonic()
    result = virt.migrate(
        source_uri=lab.uri(src),
        domain_uuid=uuid,
        destination_uri=lab.host(dst)["peer_uri"],
        flags=flags,
        **options,
    )
    return result, reports, time.monotonic() - t


def tls_params(lab, dst: str, **extra) -> dict:
    """The params of Ferry's plan for an encrypted migration to dst (see migrations_app/resolver.py)."""
    address = lab.host(dst)["address"]
    return {"migrate_uri": f"tcp://{address}", "tls.destination": address, "parallel.connections": 2, **extra}


def assert_stays_on_source(lab, uuid: str, src: str, dst: str) -> None:
    assert virt.domain_state(lab.uri(src), uuid) == "up"
    assert virt.domain_state(lab.uri(dst), uuid) is None


def assert_progress_sane(reports: list[dict]) -> None:
    values = [r["progress"] for r in reports]
    assert values == sorted(values), f"progress went backwards: {values}"
    assert all(0 <= v <= 99 for v in values), values
    for r in reports:
        assert {"data_total", "data_processed", "data_remaining", "memory_iteration"} <= set(r)


@pytest.fixture(scope="module")
def _busy_guests(lab):
    names: list[str] = []
    yield names
    for name in names:
        lab.rm_guest(name)


@pytest.fixture
def busy_guest(lab, _busy_guests):
    """A small guest on hosta that re-dirties its memory (32 MiB/s at full speed): reused between
    tests of this module while it still runs on hosta, started fresh otherwise."""
    if _busy_guests:
        entry = lab["guests"].get(_busy_guests[-1])
        if entry and location(lab, entry["uuid"])[0] == "hosta":
            return entry
    entry = lab.guest(host="hosta", mem=256, fill=32, dirty=32)
    _busy_guests.append(entry["name"])
    return entry


# ------------------------------------------------------------------------------ without the lab
def test_virt_imports_without_libvirt_python():
    code = (
        "import sys; sys.modules['libvirt'] = None\n"
        "from ferry_agent import virt\n"
        "try:\n"
        "    virt.host_capabilities('qemu:///system')\n"
        "except virt.VirtError as e:\n"
        "    print('VirtError', e.code, e.message)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("VirtError None libvirt-python is not installed"), out


def test_unknown_flag_raises_before_anything():
    pytest.importorskip("libvirt")
    with pytest.raises(virt.VirtError) as info:
        virt.migrate(
            source_uri=ABSENT_SOCKET,
            domain_uuid="00000000-0000-0000-0000-000000000000",
            destination_uri="qemu+tcp://127.0.0.3/system",
            flags=["VIR_MIGRATE_LIVE", "VIR_MIGRATE_TELEPORT"],
            params={},
            schedule={},
            timeout=10,
            on_progress=lambda _p: None,
            should_cancel=lambda: False,
        )
    assert "VIR_MIGRATE_TELEPORT" in info.value.message
    for bad in ("VIR_DOMAIN_RUNNING", "VIR_MIGRATE_PARAM_URI", "live"):
        with pytest.raises(virt.VirtError):
            virt.migrate(
                source_uri=ABSENT_SOCKET,
                domain_uuid="00000000-0000-0000-0000-000000000000",
                destination_uri="qemu+tcp://127.0.0.3/system",
                flags=[bad],
                params={},
                schedule={},
                timeout=10,
                on_progress=lambda _p: None,
                should_cancel=lambda: False,
            )


def test_unknown_schedule_action_raises():
    pytest.importorskip("libvirt")
    with pytest.raises(virt.VirtError, match="unknown action"):
        virt.migrate(
            source_uri=ABSENT_SOCKET,
            domain_uuid="00000000-0000-0000-0000-000000000000",
            destination_uri="qemu+tcp://127.0.0.3/system",
            flags=BASE_FLAGS,
            params={},
            schedule={"init": [{"name": "reboot", "params": []}]},
            timeout=10,
            on_progress=lambda _p: None,
            should_cancel=lambda: False,
        )


def test_absent_host_raises_quickly():
    pytest.importorskip("libvirt")
    for call in (
        lambda: virt.host_capabilities(ABSENT_SOCKET, timeout=5),
        lambda: virt.list_domains(ABSENT_SOCKET, timeout=5),
        lambda: virt.domain_state(ABSENT_SOCKET, "00000000-0000-0000-0000-000000000000", timeout=5),
    ):
        t = time.monotonic()
        with pytest.raises(virt.VirtError) as info:
            call()
        assert time.monotonic() - t < 3
        assert info.value.code is not None  # libvirt's own error code (38: system error)
        assert "libvirt-sock" in info.value.message


# ------------------------------------------------------------------------------ the real lab
@pytest.mark.lab
def test_host_capabilities(lab):
    for name in ("hosta", "hostb"):
        caps = virt.host_capabilities(lab.uri(name))
        assert set(caps) == CAPABILITY_KEYS
        assert re.fullmatch(r"\d+\.\d+\.\d+", caps["libvirt_version"])
        assert re.fullmatch(r"\d+\.\d+\.\d+", caps["qemu_version"])
        assert tuple(map(int, caps["libvirt_version"].split("."))) >= (8, 5, 0)
        assert tuple(map(int, caps["qemu_version"].split("."))) >= (7, 1, 0)
        assert caps["agent_version"] == importlib.metadata.version("libvirt-python")
        assert caps["zerocopy_migrations"] is True
        assert caps["parallel_migrations"] is True
        assert isinstance(caps["cpu_count"], int) and caps["cpu_count"] >= 1
        assert isinstance(caps["memory_mib"], int) and caps["memory_mib"] > 256
        assert caps["link_speed_mbps"] is None or isinstance(caps["link_speed_mbps"], int)
    print(f"\n[lab] capabilities: {caps}")


@pytest.mark.lab
def lab_hard_limit_mib() -> int | None:
    """The lab's guests declare <memtune><hard_limit> as `ulimit -l` (lab/lab.sh), none when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return None if soft == resource.RLIM_INFINITY else soft // 1024 // 1024


def test_list_domains_and_domain_state(lab):
    entry, host = labvm(lab)
    domains = {d["uuid"]: d for d in virt.list_domains(lab.uri(host))}
    assert domains[entry["uuid"]] == {
        "uuid": entry["uuid"],
        "name": "labvm",
        "memory_mib": entry["memory_mib"],
        "vcpus": 1,
        "state": "up",
        "memtune_hard_limit_mib": lab_hard_limit_mib(),
    }
    assert entry["uuid"] not in {d["uuid"] for d in virt.list_domains(lab.uri(lab.other(host)))}
    assert entry["uuid"] in virt.active_domain_uuids(lab.uri(host))
    assert entry["uuid"] not in virt.active_domain_uuids(lab.uri(lab.other(host)))
    assert virt.domain_state(lab.uri(host), entry["uuid"]) == "up"
    assert virt.domain_state(lab.uri(lab.other(host)), entry["uuid"]) is None
    assert virt.domain_state(lab.uri(host), "12345678-1234-4234-8234-123456789abc") is None


@pytest.mark.lab
def test_zero_copy_migration_moves_the_guest(lab):
    entry, src = labvm(lab)
    dst = lab.other(src)
    src_log = lab.host(src)["log"]
    offset = log_size(src_log)
    tick_before = last_tick(entry["console_logs"][src])
    assert tick_before > 0

    result, reports, seconds = migrate(lab, entry["uuid"], src, dst, ZEROCOPY_FLAGS, params={"parallel.connections": 2})
    assert result["ok"], result
    assert not (result["cancelled"] or result["timed_out"] or result["aborted_by_schedule"])
    assert result["error_code"] is None and result["error_message"] is None
    assert virt.domain_state(lab.uri(dst), entry["uuid"]) == "up"
    assert virt.domain_state(lab.uri(src), entry["uuid"]) is None  # UNDEFINE_SOURCE

    # zero-copy proven by QEMU itself, in the source daemon's log (QEMU monitor traffic)
    new_log = log_since(src_log, offset)
    assert ZEROCOPY_EVIDENCE in new_log
    assert '"multifd-channels":2' in new_log

    # the guest kept running: its heartbeat goes on in the destination host's console log
    tick_after = wait_tick_above(entry["console_logs"][dst], tick_before)

    stats = result["stats"]
    for key in ("time_elapsed", "downtime", "data_processed", "memory_bps", "memory_iteration"):
        assert key in stats, (key, stats)
    assert stats["data_processed"] > entry["fill_mib"] * 2**20
    assert result["stats_source"] == "completed"
    assert_progress_sane(reports)
    assert 0 <= result["progress"] <= 99
    print(
        f"\n[lab] zero-copy migration {src} -> {dst}: {seconds:.2f} s wall, "
        f"time_elapsed {stats['time_elapsed']} ms, downtime {stats['downtime']} ms, "
        f"{stats['memory_iteration']} iterations, {stats['data_processed'] / 2**20:.0f} MiB, "
        f"{stats['memory_bps'] * 8 / 1e9:.2f} Gbit/s; heartbeat tick {tick_before} -> {tick_after}; "
        f"{len(reports)} progress reports"
    )


@pytest.mark.lab
def test_zerocopy_without_parallel_is_refused(lab):
    entry, src = labvm(lab)
    dst = lab.other(src)
    result, _reports, seconds = migrate(lab, entry["uuid"], src, dst, [*BASE_FLAGS, "VIR_MIGRATE_ZEROCOPY"])
    assert result["ok"] is False
    assert result["error_code"] == 55  # VIR_ERR_OPERATION_INVALID
    assert "parallel" in result["error_message"]
    assert not (result["cancelled"] or result["timed_out"])
    assert seconds < 10
    assert_stays_on_source(lab, entry["uuid"], src, dst)


@pytest.mark.lab
def test_tls_parallel_migration_moves_the_guest(lab):
    """Migration encryption on: Ferry's exact plan (TLS + PARALLEL + AUTO_CONVERGE, no ZEROCOPY)."""
    entry, src = labvm(lab)
    dst = lab.other(src)
    src_log, dst_log = lab.host(src)["log"], lab.host(dst)["log"]
    src_offset, dst_offset = log_size(src_log), log_size(dst_log)
    tick_before = last_tick(entry["console_logs"][src])
    assert tick_before > 0

    result, reports, seconds = migrate(lab, entry["uuid"], src, dst, TLS_FLAGS, params=tls_params(lab, dst))
    assert result["ok"], result
    assert not (result["cancelled"] or result["timed_out"] or result["aborted_by_schedule"])
    assert result["error_code"] is None and result["error_message"] is None
    assert virt.domain_state(lab.uri(dst), entry["uuid"]) == "up"
    assert virt.domain_state(lab.uri(src), entry["uuid"]) is None  # UNDEFINE_SOURCE

    new_log = log_since(src_log, src_offset)
    # TLS, proven by the QEMU monitor traffic: the source QEMU gets x509 client credentials from
    # the lab's PKI and migrates with them, verifying the destination's certificate against
    # tls.destination; the destination QEMU gets server credentials that verify the client's
    evidence = [line for line in new_log.splitlines() if "QEMU_MONITOR_SEND_MSG" in line and TLS_EVIDENCE.search(line)]
    assert evidence, "the source QEMU never got tls-creds for the migration"
    creds, hostname = TLS_EVIDENCE.search(evidence[0]).groups()
    assert hostname == lab.host(dst)["address"]
    assert re.search(
        rf'"qom-type":"tls-creds-x509","id":"{creds}","dir":"{re.escape(lab.host(src)["tls_x509_dir"])}",'
        r'"endpoint":"client","verify-peer":true',
        new_log,
    ), "no x509 client credentials on the source"
    assert re.search(
        rf'"qom-type":"tls-creds-x509","id":"\w+","dir":"{re.escape(lab.host(dst)["tls_x509_dir"])}",'
        r'"endpoint":"server","verify-peer":true',
        log_since(dst_log, dst_offset),
    ), "no x509 server credentials (verifying the client) on the destination"
    # parallel, and no zero-copy anywhere in this migration
    assert '"capability":"multifd","state":true' in new_log
    assert '"multifd-channels":2' in new_log
    assert ZEROCOPY_EVIDENCE not in new_log

    tick_after = wait_tick_above(entry["console_logs"][dst], tick_before)
    stats = result["stats"]
    assert stats["data_processed"] > entry["fill_mib"] * 2**20
    assert_progress_sane(reports)
    print(
        f"\n[lab] TLS + parallel migration {src} -> {dst}: {seconds:.2f} s wall, "
        f"time_elapsed {stats['time_elapsed']} ms, downtime {stats['downtime']} ms, "
        f"{stats['memory_iteration']} iterations, {stats['data_processed'] / 2**20:.0f} MiB, "
        f"{stats['memory_bps'] * 8 / 1e9:.2f} Gbit/s; heartbeat tick {tick_before} -> {tick_after}\n"
        f"[lab] TLS evidence: {evidence[0][evidence[0].index('msg=') :]}"
    )


@pytest.mark.lab
def test_tls_refuses_a_destination_name_not_in_its_certificate(lab):
    """The certificates are really checked: a tls.destination that the destination's certificate
    does not name (its SAN is IP:127.0.0.x, DNS:<host>.ferrylab) fails the TLS handshake."""
    entry, src = labvm(lab)
    dst = lab.other(src)
    result, _reports, seconds = migrate(
        lab, entry["uuid"], src, dst, TLS_FLAGS, params=tls_params(lab, dst, **{"tls.destination": "127.0.0.9"})
    )
    assert result["ok"] is False
    assert "Certificate does not match the hostname 127.0.0.9" in result["error_message"], result
    assert not (result["cancelled"] or result["timed_out"])
    assert seconds < 15
    assert_stays_on_source(lab, entry["uuid"], src, dst)


@pytest.mark.lab
def test_zerocopy_with_tls_is_refused_by_qemu(lab):
    entry, src = labvm(lab)
    dst = lab.other(src)
    result, _reports, seconds = migrate(
        lab, entry["uuid"], src, dst, [*TLS_FLAGS, "VIR_MIGRATE_ZEROCOPY"], params=tls_params(lab, dst)
    )
    assert result["ok"] is False
    assert ZEROCOPY_TLS_REFUSED in result["error_message"], result
    assert not (result["cancelled"] or result["timed_out"])
    assert seconds < 10
    assert_stays_on_source(lab, entry["uuid"], src, dst)


@pytest.mark.lab
def test_cancel_aborts_and_the_guest_stays(lab, busy_guest):
    started: list[float] = []

    def should_cancel() -> bool:
        return bool(started) and time.monotonic() - started[0] > 1.0

    def on_progress(report: dict) -> None:
        started.append(time.monotonic())

    result, _reports, seconds = migrate(
        lab,
        busy_guest["uuid"],
        "hosta",
        "hostb",
        BASE_FLAGS,
        params={"bandwidth": 5},  # MiB/s: the copy alone would take far longer than the test
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    assert result["cancelled"] is True
    assert result["ok"] is False
    assert result["error_code"] == 78, result  # VIR_ERR_OPERATION_ABORTED
    assert not result["timed_out"]
    assert seconds < 15
    assert_stays_on_source(lab, busy_guest["uuid"], "hosta", "hostb")
    console = busy_guest["console_logs"]["hosta"]
    wait_tick_above(console, last_tick(console))


def dirty_rate_mib_s(console: str, mib_per_tick: int, ticks: int = 3, timeout: float = 120.0) -> float:
    """The rate at which a lab guest started with --dirty really dirties its memory on this machine
    now: lab/guest-init.sh re-writes mib_per_tick MiB between two ticks, however slowly it runs."""
    deadline = time.monotonic() + timeout
    first = wait_tick_above(console, last_tick(console), timeout=timeout)
    started = time.monotonic()
    while (tick := last_tick(console)) < first + ticks:
        assert time.monotonic() < deadline, f"the guest stopped ticking at {tick}"
        time.sleep(0.05)
    return mib_per_tick * (tick - first) / (time.monotonic() - started)


@pytest.mark.lab
def test_convergence_schedule_runs_in_order_and_aborts(lab, fresh_guest):
    # Whether a migration converges depends on how fast the guest dirties memory against the
    # bandwidth cap: with the guest faster than the cap, the dirty set never shrinks, so the schedule
    # must run to its abort. The guest's real rate is measured on this machine, now (a loaded
    # machine slows the guest), and the cap set at a quarter of it.
    guest = fresh_guest(host="hosta", mem=384, fill=48, dirty=48)  # 4 slices of 12 MiB a tick
    rate = dirty_rate_mib_s(guest["console_logs"]["hosta"], mib_per_tick=48)
    cap = max(1, min(16, int(rate / 4)))
    src_log = lab.host("hosta")["log"]
    offset = log_size(src_log)
    schedule = {
        "init": [{"name": "setDowntime", "params": ["100"]}],
        "stalling": [
            {"limit": -1, "action": {"name": "abort", "params": []}},  # "last": runs after the others
            {"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
            {"limit": 2, "action": {"name": "setDowntime", "params": ["200"]}},
        ],
    }
    result, reports, seconds = migrate(
        lab,
        guest["uuid"],
        "hosta",
        "hostb",
        BASE_FLAGS,
        params={"bandwidth": cap},  # MiB/s
        schedule=schedule,
        timeout=90 + 600 / cap,  # the first pass moves ~100 MiB, each later one ~48 MiB
    )
    print(f"\n[lab] guest dirties {rate:.0f} MiB/s, cap {cap} MiB/s")
    got = [(a["phase"], a["name"], a["params"], a["limit"]) for a in result["actions"]]
    assert got == [
        ("init", "setDowntime", ["100"], None),
        ("stalling", "setDowntime", ["150"], 1),
        ("stalling", "setDowntime", ["200"], 2),
        ("stalling", "abort", [], -1),
    ], result["actions"]
    assert all(a["ok"] for a in result["actions"]), result["actions"]
    iterations = [a["iteration"] for a in result["actions"][1:]]
    assert iterations == sorted(set(iterations)) and iterations[0] > 1, iterations
    assert result["aborted_by_schedule"] is True
    assert result["ok"] is False and result["error_code"] == 78
    assert not (result["cancelled"] or result["timed_out"])
    assert_progress_sane(reports)
    assert_stays_on_source(lab, guest["uuid"], "hosta", "hostb")
    new_log = log_since(src_log, offset)
    for ms in (100, 150, 200):
        assert f'"downtime-limit":{ms}}}' in new_log, ms
    print(f"\n[lab] schedule aborted after {seconds:.1f} s at iterations {iterations}")


@pytest.mark.lab
def test_hard_timeout_aborts_a_slow_migration(lab, busy_guest):
    result, _reports, seconds = migrate(
        lab, busy_guest["uuid"], "hosta", "hostb", BASE_FLAGS, params={"bandwidth": 2}, timeout=3
    )
    assert result["timed_out"] is True
    assert result["ok"] is False
    assert not result["cancelled"]
    assert 3 <= seconds < 12
    assert_stays_on_source(lab, busy_guest["uuid"], "hosta", "hostb")


@pytest.mark.lab
def test_destination_dies_mid_migration(lab, busy_guest):
    killed: list[float] = []

    def on_progress(report: dict) -> None:
        if not killed and report["data_processed"]:
            # the daemon and the guest's incoming QEMU die; labvm (if it is on hostb) lives on
            lab.kill_host("hostb", guest=busy_guest["name"])
            killed.append(time.monotonic())

    try:
        result, _reports, _seconds = migrate(
            lab,
            busy_guest["uuid"],
            "hosta",
            "hostb",
            BASE_FLAGS,
            params={"bandwidth": 5},
            on_progress=on_progress,
            timeout=60,
        )
    finally:
        lab.start_host("hostb")
    assert killed, "the migration never reported progress"
    assert result["ok"] is False, result
    assert not (result["timed_out"] or result["cancelled"])
    assert result["error_code"] is not None and result["error_message"]
    assert time.monotonic() - killed[0] < 30
    assert_stays_on_source(lab, busy_guest["uuid"], "hosta", "hostb")
    assert virt.host_capabilities(lab.uri("hostb"))["zerocopy_migrations"] is True
    print(f"\n[lab] destination died: {result['error_code']} {result['error_message']!r}")


@pytest.mark.lab
def test_silent_destination_hits_the_hard_timeout(lab, busy_guest):
    """A 'host' that accepts TCP but never speaks: migrateToURI3 would block for minutes."""
    listener = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab["namespace"],
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('127.0.0.9', 16509)); s.listen(8); s.settimeout(0.5); keep = []\n"
            "print('listening', flush=True); end = time.time() + 60\n"
            "while time.time() < end:\n"
            "    try: keep.append(s.accept()[0])\n"
            "    except socket.timeout: pass\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    uuid = busy_guest["uuid"]
    try:
        assert listener.stdout.readline().strip() == "listening"
        t = time.monotonic()
        result = virt.migrate(
            source_uri=lab.uri("hosta"),
            domain_uuid=uuid,
            destination_uri="qemu+tcp://127.0.0.9/system",
            flags=ZEROCOPY_FLAGS,
            params={"parallel.connections": 2},
            schedule={},
            timeout=3,
            on_progress=lambda _p: None,
            should_cancel=lambda: False,
            poll_interval=0.2,
        )
        seconds = time.monotonic() - t
    finally:
        listener.kill()  # the source daemon's connect attempt ends now, and with it its job
        listener.wait()
    assert result["timed_out"] is True
    assert result["ok"] is False
    assert 3 <= seconds < 3 + 6
    assert virt.domain_state(lab.uri("hosta"), uuid) == "up"  # the guest never left
    # the source daemon's job ends once the silent peer is gone
    end = time.monotonic() + 30
    while True:
        try:
            virt.abort_job(lab.uri("hosta"), uuid, timeout=10)
        except virt.VirtError as error:
            if error.code == 55:  # no job is active
                break
        assert time.monotonic() < end, "the source daemon still runs a job for the guest"
        time.sleep(0.2)
    assert virt.domain_state(lab.uri("hosta"), uuid) == "up"


@pytest.mark.lab
def test_abort_job_without_a_job(lab):
    entry, host = labvm(lab)
    with pytest.raises(virt.VirtError) as info:
        virt.abort_job(lab.uri(host), entry["uuid"])
    assert info.value.code == 55  # VIR_ERR_OPERATION_INVALID: no job is active
    with pytest.raises(virt.VirtError) as info:
        virt.abort_job(lab.uri(host), "12345678-1234-4234-8234-123456789abc")
    assert info.value.code == 42  # VIR_ERR_NO_DOMAIN
