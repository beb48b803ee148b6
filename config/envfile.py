"""The settings file of a checkout, var/ferry.env: FERRY_* settings that every process of that
checkout reads (config/settings.py), so that what `make run` or `make lab` chose there holds for a
`manage.py` command, a shell or a second web process started beside it.

One `KEY=value` a line; `#` starts a comment; only FERRY_* names are read. A variable set in a
process's environment wins over the file. The file is written atomically, readable by its owner only.

    python -m config.envfile set FERRY_LIBVIRT_ALLOW_TCP=true     (keeps the other lines)
    python -m config.envfile unset FERRY_LIBVIRT_ALLOW_TCP
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

NAME = re.compile(r"FERRY_[A-Z0-9_]+")
HEADER = "# Ferry's settings for this checkout (config/envfile.py); the environment wins over them."


def read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        key = key.strip()
        if sep and NAME.fullmatch(key):
            values[key] = value.strip()
    return values


def load(path: Path, environ: dict[str, str] | os._Environ = os.environ) -> set[str]:
    """Put the file's values into environ where it has none; returns the names it set."""
    applied = set()
    for key, value in read(path).items():
        if key not in environ:
            environ[key] = value
            applied.add(key)
    return applied


def update(path: Path, changes: Mapping[str, str | None]) -> None:
    """Set (or, for None, remove) keys, keeping every other line as it is."""
    for key, value in changes.items():
        if not NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a FERRY_* name")
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError(f"{key}: a value is one line")
    lines = path.read_text().splitlines() if path.is_file() else [HEADER]
    pending = dict(changes)
    out = []
    for line in lines:
        key = line.strip().partition("=")[0].strip()
        if key in pending:
            value = pending.pop(key)
            if value is not None:
                out.append(f"{key}={value}")
            continue
        out.append(line)
    out.extend(f"{key}={value}" for key, value in pending.items() if value is not None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".ferry.env.", delete=False) as handle:
        handle.write("\n".join(out) + "\n")
    os.chmod(handle.name, 0o600)
    os.replace(handle.name, path)


def default_path() -> Path:
    base = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("FERRY_VAR_DIR", base / "var")) / "ferry.env"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("set", "unset"):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    if argv[0] == "set":
        pairs = [item.partition("=") for item in argv[1:]]
        if any(not sep for _, sep, _ in pairs):
            print("set takes KEY=value arguments", file=sys.stderr)
            return 2
        update(default_path(), {key: value for key, _, value in pairs})
    else:
        update(default_path(), dict.fromkeys(argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
