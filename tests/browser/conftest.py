"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

Playwright cannot download its own browser here, so the launch uses /usr/bin/chromium (`make
setup` installs it when root). Without it every browser test is skipped, loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.pages.world import build_world, read_only_user

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the tests
# themselves are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 800, "height": 900}


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing. Run `make setup` as root to install Chromium."
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": WIDE, "locale": "en-US"}


@pytest.fixture
def screenshots_dir(pytestconfig) -> Path:
    """test-results/screenshots/ (pytest-playwright's --output folder, git-ignored)."""
    path = Path(pytestconfig.getoption("--output")).absolute() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def world(transactional_db):
    return build_world()


def log_in(page, live_server, user) -> None:
    """Give the browser a logged-in session cookie (the login form has its own test)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def admin_page(page, live_server, admin_user):
    log_in(page, live_server, admin_user)
    return page


@pytest.fixture
def reader_page(page, live_server, transactional_db):
    log_in(page, live_server, read_only_user())
    return page


@pytest.fixture
def worker(monkeypatch):
    """What runs a migration once it is queued. This default has no worker: enqueued jobs are
    recorded instead of being sent to the broker, and stay queued. Override this fixture with
    one that starts a real Celery worker (returning it) to drive jobs to a terminal state."""
    sent = []
    monkeypatch.setattr("migrations_app.tasks.enqueue_migration", sent.append)
    return None
