"""Fixtures for the tests of core/virt.py against the real two-host libvirt lab.

They live in tests/lab_fixtures.py (shared with the end-to-end tests); see there.
"""

from tests.lab_fixtures import fresh_guest, lab  # noqa: F401
