"""The live page at / in a real browser (tests/browser.py), against the composed stack: it
loads cleanly, shows the replicas a scale brings and takes away, counts 429s as such, works
from the keyboard, reads well, and says so when the probes are off. Each page is opened with
`with Watched(...)`, which keeps a screenshot of it when the test fails inside the block."""

import re
import time
from collections import Counter

import pytest

from browser import ARTIFACTS, Watched, chromium
from composed import composed_stack


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def live_stack():
    """compose.yaml, limits on (the images as built, without the development mounts): the
    page's own stack, since it scales."""
    with composed_stack("live-page") as composed:
        yield composed


def open_live_page(watched, stack, replicas=1):
    watched.page.goto(stack.url("/"))
    expect_replica_count(watched, replicas)


def expect_replica_count(watched, replicas, within_s=30):
    watched.page.wait_for_function(
        "n => document.getElementById('replica-count').textContent === String(n)", arg=replicas, timeout=within_s * 1000
    )


def fire(watched, count, concurrency, endpoint="whoami", within_s=90):
    page = watched.page
    page.select_option("#endpoint", endpoint)
    page.fill("#count", str(count))
    page.fill("#concurrency", str(concurrency))
    page.click("#fire")
    page.wait_for_selector("#run-status[data-state=done]", timeout=within_s * 1000)
    return outcomes(watched)


def outcomes(watched):
    return {
        name: int(watched.page.inner_text(f"[data-outcome={name}]")) for name in ("ok", "limited", "error", "network")
    }


def scale(stack, replicas):
    stack.make("scale", f"N={replicas}", timeout=300)
    return stack.replicas_answering(replicas, deadline_s=30)


def test_the_page_loads_with_no_console_error_and_nothing_from_outside_the_stack(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        scale(live_stack, 1)
        open_live_page(watched, live_stack)
        page = watched.page
        # Rendered by a replica, which the page names; the settings come from /api/settings.
        (replica,) = live_stack.running("web")
        assert replica.id[:12] in page.inner_text("#rendered-by")
        page.wait_for_selector("#settings-table")
        settings = page.inner_text("#settings-table")
        assert re.search(r"worker_class\s+gevent", settings), settings
        assert re.search(r"gunicorn workers\s+\d+", settings), settings
        assert watched.console_errors == []
        assert watched.page_errors == []
        assert watched.refused == []
        assert watched.requests and all(url.startswith(live_stack.base_url + "/") for url in watched.requests)
        # The stylesheet, both scripts and the logo, each by its fingerprinted name from nginx.
        assets = [url for url in watched.requests if "/static/" in url]
        assert {"css", "js", "img"} <= {url.split("/static/")[1].split("/")[0] for url in assets}
        assert all(re.search(r"\.[0-9a-f]{12}\.[a-z]+$", url) for url in assets), assets


def test_after_make_scale_3_firing_requests_shows_three_replicas_on_the_chart(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        running = scale(live_stack, 3)
        open_live_page(watched, live_stack, replicas=3)
        counts = fire(watched, count=150, concurrency=6)
        assert counts == {"ok": 150, "limited": 0, "error": 0, "network": 0}
        bars = watched.page.eval_on_selector_all(
            "#spread-chart g.bar",
            "bars => bars.map(bar => [bar.dataset.replica, bar.querySelector('.value').textContent])",
        )
        assert {replica for replica, _ in bars} == running
        assert sum(int(count) for _, count in bars) == 150
        # nginx balances: no replica is left out or takes nearly everything.
        assert all(int(count) >= 15 for _, count in bars), bars
        assert re.fullmatch(r"[\d.]+ m?s", watched.page.inner_text("#p50"))
        assert re.fullmatch(r"[\d.]+ m?s", watched.page.inner_text("#p99"))
        assert watched.page.locator("#latency-chart rect.bucket").count() > 0
        # Every replica's settings, in one column since they agree.
        watched.page.wait_for_selector(
            "#settings-table caption:has-text('All 3 replicas that reported')", timeout=20_000
        )
        (column,) = watched.page.eval_on_selector_all(
            "#settings-table thead th:not(:first-child)", "cells => cells.map(c => c.textContent)"
        )
        assert set(column.split(", ")) == running
        assert watched.console_errors == [] and watched.page_errors == []
        watched.screenshot("live-page-three-replicas.png")


def test_scaling_while_the_page_is_open_updates_the_count_up_and_down(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        scale(live_stack, 2)
        open_live_page(watched, live_stack, replicas=2)
        started = time.monotonic()
        scale(live_stack, 3)
        # A new replica is counted once one of the page's heartbeats reaches it.
        expect_replica_count(watched, 3, within_s=45)
        print(f"replica count 2 -> 3 on the page {time.monotonic() - started:.1f} s after make scale N=3 began")
        started = time.monotonic()
        running = scale(live_stack, 2)
        # The stopped replica answers no more; the page drops it once its window has passed.
        expect_replica_count(watched, 2, within_s=45)
        print(f"replica count 3 -> 2 on the page {time.monotonic() - started:.1f} s after make scale N=2 began")
        assert watched.page_errors == []
        # What the page shows is what runs: the two replicas left.
        fire(watched, count=40, concurrency=4)
        shown = set(
            watched.page.eval_on_selector_all("#spread-chart g.bar", "bars => bars.map(b => b.dataset.replica)")
        )
        assert shown == running


@pytest.fixture(scope="module")
def limited_stack():
    """A stack of its own with a low rate limit, so that a burst from the browser is over it
    at once and the other tests' stack keeps a full bucket. The limit still admits the page:
    its load (the HTML, its static files and the first heartbeat) fits in the burst, and the
    heartbeat's steady rate (live.js, HEARTBEAT_MS and ASKS_PER_HEARTBEAT) is under the rate."""
    low_limit = {"NGINX_RATE_LIMIT": "10r/s", "NGINX_RATE_LIMIT_BURST": "20", "NGINX_PROXY_READ_TIMEOUT": "1s"}
    with composed_stack("live-page-limited", env=low_limit) as composed:
        yield composed


def test_requests_that_fail_are_counted_as_errors_with_their_status(browser, limited_stack):
    """nginx here waits 1 s for an answer (NGINX_PROXY_READ_TIMEOUT): sleeps of 1.5 s are its
    JSON 504s, which the page counts apart from the answered and the rate-limited ones."""
    with Watched(browser, limited_stack.base_url) as watched:
        open_live_page(watched, limited_stack, replicas=1)
        # The duration's field is enabled once sleep is chosen.
        watched.page.select_option("#endpoint", "sleep")
        watched.page.fill("#sleep-ms", "1500")
        counts = fire(watched, count=4, concurrency=4, endpoint="sleep")
        assert counts == {"ok": 0, "limited": 0, "error": 4, "network": 0}
        assert watched.page.inner_text("#error-kinds") == "HTTP 504: 4"
        assert "0 answered, 0 rate limited, 4 failed" in watched.page.inner_text("#run-status")
        assert watched.page_errors == []
        watched.screenshot("live-page-errors.png")


def test_a_burst_over_the_rate_limit_shows_429s_as_such(browser, limited_stack):
    with Watched(browser, limited_stack.base_url) as watched:
        loaded_since = int(time.time()) - 1
        open_live_page(watched, limited_stack, replicas=1)
        # The page itself was served whole under the limit: nothing it asked for was refused.
        statuses = Counter(line["status"] for line in limited_stack.nginx_access_log(since=loaded_since))
        assert statuses and 429 not in statuses, statuses
        since = int(time.time()) - 1
        counts = fire(watched, count=400, concurrency=40)
        assert counts["limited"] > 0, counts
        assert counts["ok"] > 0, counts
        assert counts["error"] == 0 and counts["network"] == 0, counts
        assert sum(counts.values()) == 400
        # Each of this run's requests is in nginx's log under the page's id (live-<page>-1-<n>),
        # with the status the page counted: none hidden, none retried.
        page_id = watched.page.get_attribute("body", "data-page-id")
        logged = [
            line
            for line in limited_stack.nginx_access_log(since=since, request_id_prefix=f"live-{page_id}-")
            if re.fullmatch(rf"live-{page_id}-1-\d+", line["request_id"])
        ]
        statuses = Counter(line["status"] for line in logged)
        assert statuses == Counter({200: counts["ok"], 429: counts["limited"]}), statuses
        assert watched.page.inner_text("[data-outcome=limited]") == str(counts["limited"])
        watched.screenshot("live-page-rate-limited.png")


def test_keyboard_alone_reaches_and_fires_the_control(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        scale(live_stack, 1)
        open_live_page(watched, live_stack)
        page = watched.page
        focused = []
        for _ in range(30):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
            if focused[-1] == "fire":
                break
        # In reading order: the endpoint, the counts, then the button (disabled fields are skipped).
        assert focused[-1] == "fire", focused
        assert [name for name in focused if name in {"endpoint", "count", "concurrency", "fire"}] == [
            "endpoint",
            "count",
            "concurrency",
            "fire",
        ], focused
        # The focus is visible: the button draws an outline while focused from the keyboard.
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        page.wait_for_selector("#run-status[data-state=done]", timeout=60_000)
        assert outcomes(watched)["ok"] == 200
        # The focus went to Stop while the run was in flight, and came back to Fire after it.
        assert page.evaluate("document.activeElement.id") == "fire"
        # Choosing another endpoint from the keyboard enables its field.
        page.focus("#endpoint")
        page.keyboard.press("ArrowDown")
        assert page.input_value("#endpoint") == "sleep"
        assert page.is_enabled("#sleep-ms") and page.is_disabled("#compute-rounds")


def test_every_field_has_a_label_and_a_bad_value_is_explained(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        open_live_page(watched, live_stack, replicas=len(live_stack.running("web")))
        page = watched.page
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input, select')].filter(f => f.labels.length === 0).map(f => f.id)"
        )
        assert unlabelled == []
        page.fill("#count", "0")
        page.click("#fire")
        assert page.inner_text("#form-error") == "Requests must be a whole number from 1 to 5000."
        assert page.get_attribute("#count", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "count"
        assert page.inner_text("#run-status") == "Nothing fired yet."


# The page's own text colours against what lies behind them.
CONTRAST_SCRIPT = """
() => {
  const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const color = rgb(getComputedStyle(node).backgroundColor);
      if (color.length < 4 || color[3] > 0) return color;
    }
    return [255, 255, 255];
  };
  const selectors = ["h1", "#rendered-by", ".note", "label", "[data-outcome=ok]", "[data-outcome=limited]",
                     "[data-outcome=error]", ".tile dt", "#fire", "#stop", "#run-status", "table.data td"];
  return selectors.map((selector) => {
    const element = document.querySelector(selector);
    const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
    return [selector, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_meets_wcag_aa_contrast_in_both_colour_schemes(browser, live_stack, scheme):
    with Watched(browser, live_stack.base_url, color_scheme=scheme) as watched:
        open_live_page(watched, live_stack, replicas=len(live_stack.running("web")))
        watched.page.wait_for_selector("#settings-table")
        ratios = dict(watched.page.evaluate(CONTRAST_SCRIPT))
        # WCAG 2.1 AA: 4.5 for normal text. The disabled Stop button is exempt (WCAG 1.4.3).
        ratios.pop("#stop")
        assert all(ratio >= 4.5 for ratio in ratios.values()), ratios


def test_on_a_phone_sized_screen_nothing_overflows_sideways(browser, live_stack):
    with Watched(browser, live_stack.base_url) as watched:
        watched.page.set_viewport_size({"width": 390, "height": 844})
        open_live_page(watched, live_stack, replicas=len(live_stack.running("web")))
        fire(watched, count=30, concurrency=3)
        overflow = watched.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the screen"
        watched.screenshot("live-page-phone.png")


def test_with_the_probes_off_as_in_production_the_page_says_so_instead_of_failing(browser):
    production_files = ("compose.yaml", "compose.prod.yaml")
    with (
        composed_stack("live-page-prod", compose_files=production_files) as production,
        Watched(browser, production.base_url) as watched,
    ):
        watched.page.goto(production.url("/"))
        watched.page.wait_for_selector("#probes-off", state="visible", timeout=15_000)
        assert watched.page.is_disabled("#fire")
        assert "APP_PROBES=off" in watched.page.inner_text("#probes-off")
        assert "replica" in watched.page.inner_text("#rendered-by")
        # The one console error is the browser's own note of the probe's 404, which the
        # page turned into its notice; the page threw nothing.
        assert watched.page_errors == []
        assert all(url.endswith(("/api/whoami", "/api/settings")) for _, url in watched.console_errors), (
            watched.console_errors
        )
        watched.screenshot("live-page-probes-off.png")


def test_a_test_failing_on_a_watched_page_leaves_a_screenshot_of_it_and_a_passing_one_none(browser, live_stack):
    kept = ARTIFACTS / (
        "failed-test_browser.py-"
        "test_a_test_failing_on_a_watched_page_leaves_a_screenshot_of_it_and_a_passing_one_none.png"
    )
    kept.unlink(missing_ok=True)
    with Watched(browser, live_stack.base_url) as watched:
        watched.page.goto(live_stack.url("/"))
    assert watched.page.is_closed()
    assert not kept.exists()
    # The block's own error is what comes out, after the screenshot and the close.
    opened = []

    def fail_on_the_live_page():
        with Watched(browser, live_stack.base_url) as failing:
            opened.append(failing)
            failing.page.goto(live_stack.url("/"))
            raise AssertionError("what the test found wrong")

    with pytest.raises(AssertionError, match="what the test found wrong"):
        fail_on_the_live_page()
    assert opened[0].page.is_closed()
    assert kept.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    kept.unlink()
