"""Run a command under a small child-subreaper (used by lab/lab.sh for each libvirtd).

    python3 lab/reaper.py COMMAND [ARGS...]

libvirt daemonizes every QEMU it starts, so the QEMU processes are re-parented to the nearest
subreaper.  Without one they end up with the sandbox's init, which reaps zombies only every
second or two, and libvirt's kill loop waits for that on every migration and destroy.  This
process marks itself PR_SET_CHILD_SUBREAPER, starts COMMAND, reaps every orphan at once,
forwards SIGTERM/SIGINT/SIGHUP to COMMAND and exits with COMMAND's status when it ends.

It also starts a new session, so that a Ctrl-C in the terminal (or pytest's process group)
that ran `lab/lab.sh up` does not reach the lab daemons, which outlive lab.sh on purpose.
Standard library only: it runs with the system python3, outside the project's venv.
"""

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: reaper.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):  # already a session leader
        os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}", file=sys.stderr)
        return 1

    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)  # noqa: S606 - runs what lab.sh asks for, by design
        except OSError as exc:
            print(f"reaper: cannot run {argv[0]}: {exc}", file=sys.stderr)
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)

    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
