"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

Playwright cannot download its own browser here, so the launch uses /usr/bin/chromium (`make
setup` installs it when root). Without it every browser test is skipped, loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from playwright.sync_api import sync_playwright

from clusters.models import Host
from tests.pages.world import build_world, read_only_user
from tests.worker_fixtures import LAB_STATE, Worker

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
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing. Run `make setup` as root to install Chromium."
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# While Playwright runs, its sync API keeps its event loop marked as running in this thread (between
# its calls too), so Django would refuse the ORM calls these tests and their fixtures make, which are
# still plain synchronous calls. Allowed around the browser tests only (these hooks run for the items
# under tests/browser/), and Playwright stops after this package (the fixtures below), so neither the
# tests after these nor the Celery workers (tests/worker_fixtures.py) run with the allowance.
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    os.environ[ASYNC_UNSAFE] = "true"
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        os.environ.pop(ASYNC_UNSAFE, None)


@pytest.fixture(scope="session")
def _serialized_test_databases(django_db_setup, django_db_blocker) -> dict:
    """The serialized test databases (for serialized_rollback), taken before Playwright starts."""
    return {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }


@pytest.fixture(scope="session")
def _serialized_databases_on_the_class(_serialized_test_databases):
    """Playwright's sync API resumes the test from asyncio callbacks, in a fresh contextvars context,
    where Django makes new connection objects. serialized_rollback looks for the serialized database
    on the connection object, so keep it on the connection class from here on; otherwise every
    transactional test after the first one, here and in later test modules, would start with the
    rows of the data migrations (levels, built-in policies) flushed away."""
    classes = {}
    for alias, contents in _serialized_test_databases.items():
        wrapper_class = type(connections[alias])
        classes[wrapper_class] = wrapper_class.__dict__.get("_test_serialized_contents")
        wrapper_class._test_serialized_contents = contents
    yield
    for wrapper_class, previous in classes.items():
        if previous is None:
            del wrapper_class._test_serialized_contents
        else:
            wrapper_class._test_serialized_contents = previous


@pytest.fixture(scope="package")
def playwright(_serialized_databases_on_the_class):
    """Playwright for this package only (pytest-playwright keeps it for the whole session): once it
    stops, its event loop is no longer marked as running in this thread."""
    started = sync_playwright().start()
    yield started
    started.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    return lambda **kwargs: browser_type.launch(**{**browser_type_launch_args, **kwargs})


@pytest.fixture(scope="package")
def browser(launch_browser):
    started = launch_browser()
    yield started
    started.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="package")
def browser_context_args(pytestconfig, _pw_artifacts_folder):
    """pytest-playwright's (whose own version needs its session-wide Playwright): its --video option,
    with Ferry's viewport and locale."""
    args = {"viewport": WIDE, "locale": "en-US"}
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


# Chromium reports a blocked script, style, eval or connection on the console ("Refused to ...
# because it violates the following Content Security Policy directive"), and fires
# securitypolicyviolation, which this script (injected by Playwright, outside the page's policy)
# also puts on the console.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def page(context):
    """pytest-playwright's page, failing its test on any Content Security Policy violation."""
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    opened = context.new_page()
    violations: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            violations.append(f"{opened.url}: {message.text}")

    opened.on("console", on_console)
    yield opened
    assert not violations, "Content Security Policy violations:\n" + "\n".join(violations)


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
def worker(world):
    """A real Celery worker serving the world's source host. That host's libvirt socket does not
    exist, so a job goes through the real task and libvirt layer and fails cleanly. The socket lies
    in the lab's socket directory, which the test workers allow (tests/worker_fixtures.py)."""
    source = world.vm.host
    missing = LAB_STATE.parent / "no-such-dir" / "ferry-browser-test.sock"
    Host.objects.filter(pk=source.pk).update(libvirt_uri=f"qemu:///system?socket={missing}")
    real_worker = Worker("browser", [f"host.{source.pk}"]).wait_ready()
    yield real_worker
    real_worker.stop()
