# Ferry: `make run` starts it on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= config.settings

.PHONY: help setup run test lint format lab lab-down bench

help:
	@echo "make run       start Ferry (SQLite, embedded broker) on http://127.0.0.1:8000/"
	@echo "make test      the whole suite (ruff, pytest; end-to-end lab tests when root)"
	@echo "make setup     create .venv and install what run and test need (idempotent)"
	@echo "make lab       start two real libvirt hosts with a guest and register them (root)"
	@echo "make lab-down  stop and remove everything make lab started"
	@echo "make bench     benchmarks in quick mode"

setup:
	@scripts/setup.sh

run: setup
	$(PY) manage.py run_ferry

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lab: setup
	@lab/lab.sh up
	$(PY) manage.py lab_register

lab-down:
	@lab/lab.sh down

bench: setup
	@$(VENV)/bin/pip install -q -r requirements-bench.txt
	$(PY) bench/run.py --quick
