"""The front page in a real browser: styles, script and the API call all work through nginx."""

import os
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Let the page's script run its fetch before the DOM is captured.
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium")
    if path is None:
        message = "chromium not installed: run scripts/install-chromium.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_chromium(chromium, *args):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )


def test_page_script_fetches_whoami_through_nginx(stack, chromium):
    dom = run_chromium(chromium, "--dump-dom", stack.url("/")).stdout
    assert "Flask production stack" in dom
    # The script (a fingerprinted static file) ran and filled in the API's answer.
    answer = dom.split('id="answer"', 1)[1].split("</pre>", 1)[0]
    assert '"worker_class": "gevent"' in answer
    assert '"hostname":' in answer


def test_page_renders_with_its_stylesheet(stack, chromium, tmp_path):
    screenshot = tmp_path / "index.png"
    lines_before = len(stack.flushed_logs("nginx").splitlines())
    run_chromium(chromium, f"--screenshot={screenshot}", "--window-size=900,700", stack.url("/"))
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 5000
    # This page load fetched the stylesheet, script and image from nginx, each a 200.
    new_lines = stack.flushed_logs("nginx").splitlines()[lines_before:]
    for asset in ("/static/css/site.", "/static/js/whoami.", "/static/img/logo."):
        assert any(f'"GET {asset}' in line and '"status":200' in line for line in new_lines), asset
