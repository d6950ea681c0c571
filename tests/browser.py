"""A real browser for the tests: Playwright driving Debian's Chromium by its executable path
(scripts/install-chromium.sh). Playwright's own browser downloads are never used: they do not
reach our machines, and the browser a Debian user has is the one worth testing."""

import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
# Screenshots the tests take, and one of each watched page a test failed in (named
# failed-<test>.png), kept after the run (CI keeps this folder as its artefacts).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


def chromium_path():
    path = shutil.which("chromium")
    if path is None:
        message = "chromium not installed: run scripts/install-chromium.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            # No sandbox: the tests run as root in a container-less VM, where Chromium's
            # sandbox cannot start. QUIC off: nothing here speaks it.
            args=["--no-sandbox", "--disable-gpu", "--disable-quic"],
        )
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page with everything it did recorded: console errors, uncaught exceptions, and
    each request, which may only go to `origin` (any other is refused, and recorded).
    Used as a context manager, it closes the page on the way out and, when the block ends
    in an error (a failed assertion, a timeout), first keeps a screenshot of the page as
    the test saw it."""

    def __init__(self, browser, origin, **context_options):
        self.origin = origin.rstrip("/") + "/"
        self.console_errors = []
        self.page_errors = []
        self.requests = []
        self.refused = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000}, **context_options)
        self.context.route("**/*", self._only_the_stack)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _only_the_stack(self, route):
        if route.request.url.startswith(self.origin):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append((message.text, message.location.get("url", "")))

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        try:
            if error_type is not None:
                self._keep_screenshot_of_failure()
        finally:
            self.close()

    def _keep_screenshot_of_failure(self):
        # pytest names the running test in PYTEST_CURRENT_TEST ("path::name[param] (call)").
        test = os.environ.get("PYTEST_CURRENT_TEST", "outside pytest").rsplit(" (", 1)[0]
        name = re.sub(r"[^\w.]+", "-", test.rsplit("/", 1)[-1]).strip("-")
        try:
            path = self.screenshot(f"failed-{name}.png")
        except PlaywrightError as why:
            # A page that can no longer be captured (crashed, closed) must not hide the
            # test's own error, which is the one reported.
            print(f"no screenshot of the failed page: {why}", file=sys.stderr)
        else:
            print(f"screenshot of the failed page: {path}", file=sys.stderr)
