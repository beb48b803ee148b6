"""var/ferry.env: what `make run` (or `make lab`) chose holds for every process of the checkout."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from config import envfile

REPO = Path(__file__).resolve().parents[1]


def test_update_sets_and_removes_keys_and_keeps_every_other_line(tmp_path):
    path = tmp_path / "ferry.env"
    path.write_text("# a comment\nFERRY_LIBVIRT_ALLOW_TCP=true\nFERRY_HOST_QUEUES=true\n")

    envfile.update(path, {"FERRY_HOST_QUEUES": "false", "FERRY_LIBVIRT_ALLOW_TCP": None, "FERRY_X": "1"})

    assert path.read_text() == "# a comment\nFERRY_HOST_QUEUES=false\nFERRY_X=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfile.read(path) == {"FERRY_HOST_QUEUES": "false", "FERRY_X": "1"}


@pytest.mark.parametrize("changes", [{"DATABASE_URL": "x"}, {"FERRY_A": "1\nDJANGO_DEBUG=true"}])
def test_update_refuses_other_names_and_multi_line_values(tmp_path, changes):
    with pytest.raises(ValueError):
        envfile.update(tmp_path / "ferry.env", changes)


def test_only_ferry_names_are_read(tmp_path):
    path = tmp_path / "ferry.env"
    path.write_text("DJANGO_SECRET_KEY=stolen\nFERRY_OK=1\n  # FERRY_COMMENTED=1\nnot a line\n")

    assert envfile.read(path) == {"FERRY_OK": "1"}


def test_the_test_suite_reads_no_checkouts_settings_file():
    assert set() == settings.FERRY_ENV_FILE_KEYS


def setting_in_a_new_process(tmp_path, name: str, **env: str) -> str:
    """What a `manage.py shell` beside `make run` sees: a process of this checkout (FERRY_VAR_DIR)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", name)}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", f"from django.conf import settings; print(settings.{name})"],
        cwd=REPO, env=environ | {"FERRY_VAR_DIR": str(tmp_path)} | env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def test_every_process_of_the_checkout_reads_it_and_its_environment_wins(tmp_path):
    envfile.update(tmp_path / "ferry.env", {"FERRY_HOST_QUEUES": "false"})

    assert setting_in_a_new_process(tmp_path, "FERRY_HOST_QUEUES") == "False"
    assert setting_in_a_new_process(tmp_path, "FERRY_HOST_QUEUES", FERRY_HOST_QUEUES="true") == "True"
    (tmp_path / "ferry.env").unlink()
    assert setting_in_a_new_process(tmp_path, "FERRY_HOST_QUEUES") == "True"


def test_the_suite_allows_no_lab_uri_unless_a_test_asks():
    assert settings.FERRY_LIBVIRT_ALLOW_TCP is False
    assert settings.FERRY_LIBVIRT_SOCKET_DIRS == []


def test_make_lab_allows_its_uris_for_the_checkout_and_lab_down_takes_that_back(tmp_path):
    """The two commands `make lab` and `make lab-down` run (Makefile), in a checkout of their own."""
    makefile = (REPO / "Makefile").read_text()
    allow = "-m config.envfile set FERRY_LIBVIRT_ALLOW_TCP=true FERRY_LIBVIRT_SOCKET_DIRS=$(LAB_DIR)"
    take_back = "-m config.envfile unset FERRY_LIBVIRT_ALLOW_TCP FERRY_LIBVIRT_SOCKET_DIRS"
    assert allow in makefile and take_back in makefile
    envfile.update(tmp_path / "ferry.env", {"FERRY_HOST_QUEUES": "false"})
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_LIBVIRT")} | {
        "FERRY_VAR_DIR": str(tmp_path)
    }
    lab_dir = str(tmp_path / "lab")

    subprocess.run([sys.executable, *allow.replace("$(LAB_DIR)", lab_dir).split()], cwd=REPO, env=environ, check=True)
    assert setting_in_a_new_process(tmp_path, "FERRY_LIBVIRT_ALLOW_TCP") == "True"
    assert setting_in_a_new_process(tmp_path, "FERRY_LIBVIRT_SOCKET_DIRS") == str([lab_dir])

    subprocess.run([sys.executable, *take_back.split()], cwd=REPO, env=environ, check=True)
    assert setting_in_a_new_process(tmp_path, "FERRY_LIBVIRT_ALLOW_TCP") == "False"
    assert setting_in_a_new_process(tmp_path, "FERRY_LIBVIRT_SOCKET_DIRS") == "[]"
    assert envfile.read(tmp_path / "ferry.env") == {"FERRY_HOST_QUEUES": "false"}
