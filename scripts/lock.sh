#!/usr/bin/env bash
# `make lock`: the lock files, from pyproject.toml, with uv (in the dev group), each pinning every
# package with its hashes. Each is constrained by the ones before it, so any of them installed
# together agree on every shared package:
#   requirements.txt        the server extra (web server and worker): what `make run` installs
#   requirements-agent.txt  the agent extra (a hypervisor, and `make run`'s embedded agent)
#   requirements-dev.txt    the test and dev groups: what `make test` adds
#   requirements-ovirt-sdk.txt  the ovirt-sdk group: the oVirt SDK for the oVirt API's tests
#   requirements-bench.txt  the bench extra: what `make bench` adds
# `make lock` keeps every pin it can; `make lock UPGRADE=1` moves everything to the newest versions.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=uv
compile() {
    local out=$1
    shift
    "$UV" pip compile --quiet --generate-hashes --universal --python-version 3.12 \
        --custom-compile-command "make lock" ${UPGRADE:+--upgrade} "$@" -o "$out"
}
compile requirements.txt pyproject.toml --extra server
compile requirements-agent.txt pyproject.toml --extra agent -c requirements.txt
compile requirements-dev.txt --group pyproject.toml:dev -c requirements.txt -c requirements-agent.txt
compile requirements-ovirt-sdk.txt --group pyproject.toml:ovirt-sdk -c requirements.txt -c requirements-agent.txt \
    -c requirements-dev.txt
compile requirements-bench.txt pyproject.toml --extra bench -c requirements.txt -c requirements-agent.txt \
    -c requirements-dev.txt -c requirements-ovirt-sdk.txt
