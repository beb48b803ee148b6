"""The `lab` and `fresh_guest` fixtures come from tests/lab_fixtures.py, through tests/conftest.py."""
