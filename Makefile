# Ferry: `make run` starts it on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= config.settings

.PHONY: help setup setup-dev setup-test setup-lab lock run test lint format checks typecheck lab lab-down bench

help:
	@echo "make run       start Ferry (SQLite, embedded broker) on http://127.0.0.1:8000/"
	@echo "make test      the whole suite (ruff, pytest; end-to-end lab tests when root)"
	@echo "make setup     create .venv and install what run needs from the lock files (idempotent)"
	@echo "make lock      the lock files (requirements*.txt) from pyproject.toml, with hashes (uv)"
	@echo "make lab       start two real libvirt hosts with a guest and register them (root)"
	@echo "make lab-down  stop and remove everything make lab started"
	@echo "make bench     benchmarks in quick mode"

setup:
	@scripts/setup.sh

# What only development, the tests and the lab need (test tools; as root, system packages):
# never installed by `make run`.
setup-dev:
	@scripts/setup.sh dev

setup-test:
	@scripts/setup.sh test

setup-lab:
	@scripts/setup.sh lab

lock:
	@scripts/lock.sh

run: setup
	$(PY) manage.py run_ferry

# ruff, and import-linter with the layer contracts of docs/architecture.md (pyproject.toml).
lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: setup-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Checks of the code that are not tests: the models and their migrations agree.
checks: setup
	$(PY) manage.py makemigrations --check --dry-run

# mypy with django-stubs and djangorestframework-stubs over the application code (pyproject.toml).
typecheck: setup-dev
	$(VENV)/bin/mypy

test: setup-test lint checks typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The lab's hosts are reached over qemu+tcp:// and UNIX sockets under var/lab (LAB_ID: var/lab-<id>),
# which Ferry refuses unless allowed (ferry_common/uris.py): make lab allows both in var/ferry.env, for
# this checkout only, and make lab-down takes that back.
LAB_DIR = $(CURDIR)/var/lab$(if $(LAB_ID),-$(LAB_ID))

lab: setup-lab
	@lab/lab.sh up
	$(PY) -m config.envfile set FERRY_LIBVIRT_ALLOW_TCP=true FERRY_LIBVIRT_SOCKET_DIRS=$(LAB_DIR)
	$(PY) manage.py lab_register

lab-down:
	@lab/lab.sh down
	$(PY) -m config.envfile unset FERRY_LIBVIRT_ALLOW_TCP FERRY_LIBVIRT_SOCKET_DIRS

bench: setup
	@$(VENV)/bin/pip install -q --no-deps --require-hashes -r requirements-bench.txt
	$(PY) bench/run.py --quick
