"""The end-to-end fixtures (the lab, its workers, the lab cluster) live in tests/worker_fixtures.py
and tests/lab_fixtures.py, shared with the browser tests through tests/conftest.py."""
