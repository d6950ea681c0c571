"""The development loop (compose.override.yaml): an edit of the app's Python code, a template
or a stylesheet shows within seconds, no image rebuilt, the stylesheet through nginx; the
production shapes mount no source. The stack runs from a copy of this repository, which the
tests edit."""

import hashlib
import shutil
import time

import pytest

from browser import Watched, chromium
from composed import ROOT, compose_config, composed_stack

DEV_FILES = ("compose.yaml", "compose.override.yaml")
# An edit must show within this; each test prints how long it took (pytest -s). gunicorn's
# reloader looks once a second, then a new worker imports the app; the rest is margin for a
# loaded machine.
EDIT_SHOWS_WITHIN_S = 20
# A broken import stops gunicorn and Docker restarts the container, backing off between tries.
BROKEN_EDIT_FIXED_WITHIN_S = 60


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """What `docker compose up` needs of the repository, copied: the tests edit the copy."""
    copy = tmp_path_factory.mktemp("checkout")
    for name in DEV_FILES:
        shutil.copy2(ROOT / name, copy / name)
    ignored = shutil.ignore_patterns("__pycache__", "tests")
    for folder in ("services/web", "services/nginx"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignored)
    return copy


@pytest.fixture(scope="module")
def dev_stack(checkout):
    with composed_stack("dev-loop", compose_files=DEV_FILES, root=checkout) as composed:
        yield composed


def seconds_until(condition, within_s=EDIT_SHOWS_WITHIN_S, what="the edit"):
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if condition():
            elapsed = time.monotonic() - started
            print(f"{what} showed {elapsed:.1f} s after it was saved")
            return elapsed
        time.sleep(0.2)
    raise AssertionError(f"{what} did not show within {within_s} s")


def images_of(stack):
    return {container.image.id for service in ("web", "nginx") for container in stack.running(service)}


def settle():
    """gunicorn's reloader takes a file's time at its first look after a worker starts: give
    the workers a look before the next edit, as any person's pause would."""
    time.sleep(2)


def test_a_python_edit_is_served_within_seconds_without_a_rebuild(dev_stack, checkout):
    images = images_of(dev_stack)
    settle()
    pages = checkout / "services/web/app/pages.py"
    pages.write_text(
        pages.read_text() + '\n\n@blueprint.get("/edited-route")\ndef edited_route():\n    return "edited in place"\n'
    )
    seconds_until(lambda: dev_stack.get("/edited-route").text == "edited in place", what="a Python edit")
    assert images_of(dev_stack) == images
    # The workers restarted, never the container: nothing was rebuilt or recreated.
    (web,) = dev_stack.running("web")
    assert web.attrs["RestartCount"] == 0
    assert "Worker reloading:" in dev_stack.logs("web")


def test_a_template_edit_is_served_within_seconds(dev_stack, checkout):
    assert dev_stack.get("/").status_code == 200
    settle()
    template = checkout / "services/web/app/templates/index.html"
    template.write_text(template.read_text().replace("<h1>Flask production stack</h1>", "<h1>Edited heading</h1>"))
    seconds_until(lambda: "<h1>Edited heading</h1>" in dev_stack.get("/").text, what="a template edit")


def test_a_stylesheet_edit_reaches_the_browser_through_nginx(dev_stack, checkout):
    stylesheet = checkout / "services/web/app/static/css/site.css"
    with chromium() as browser, Watched(browser, dev_stack.base_url) as watched:
        page = watched.page
        page.goto(dev_stack.url("/"))
        heading_colour = "getComputedStyle(document.querySelector('h1')).color"
        assert page.evaluate(heading_colour) != "rgb(1, 2, 3)"
        settle()
        stylesheet.write_text(stylesheet.read_text() + "\nh1 { color: rgb(1, 2, 3); }\n")
        digest = hashlib.sha256(stylesheet.read_bytes()).hexdigest()[:12]
        link = f"/static/css/site.{digest}.css"

        def reloaded_page_shows_it():
            page.reload()
            linked = page.evaluate("document.querySelector('link[rel=stylesheet]')?.getAttribute('href')")
            return linked == link and page.evaluate(heading_colour) == "rgb(1, 2, 3)"

        # The page links the stylesheet by its new content's fingerprint, and styles by it.
        seconds_until(reloaded_page_shows_it, what="a stylesheet edit, in the browser")
        assert watched.console_errors == [] and watched.page_errors == []
    # nginx served that name itself: its log shows no upstream for it, web's no such request.
    served = [line for line in dev_stack.nginx_access_log() if line["request"].startswith(f"GET {link} ")]
    assert served and all(line["status"] in (200, 304) and line["upstream"] == "" for line in served), served
    assert "GET /static/" not in dev_stack.logs("web")


def test_an_edit_that_breaks_the_import_recovers_once_fixed_without_make_up(dev_stack, checkout):
    (web,) = dev_stack.running("web")
    settle()
    pages = checkout / "services/web/app/pages.py"
    working = pages.read_text()
    # Not a syntax error, which gunicorn would show as its error page: a name that fails at import.
    pages.write_text(working + "\n\nundefined_name_breaks_the_import\n")
    seconds_until(lambda: dev_stack.get("/").status_code >= 500, what="the broken import")
    pages.write_text(working)
    seconds_until(
        lambda: dev_stack.get("/").status_code == 200, within_s=BROKEN_EDIT_FIXED_WITHIN_S, what="the fixed import"
    )
    # The same container, started again by Docker (restart: on-failure), not recreated.
    assert [container.id for container in dev_stack.running("web")] == [web.id]


def pushed_compose_config(*files):
    """`docker compose config` of these files, pushed image names made up: only the mounts
    matter here."""
    made_up = {
        "PUSHED_WEB_IMAGE": "registry.test/web@sha256:" + "0" * 64,
        "PUSHED_NGINX_IMAGE": "registry.test/nginx@sha256:" + "0" * 64,
    }
    return compose_config(*files, env=made_up)


def source_mounts(config):
    """Every bind mount of a folder of this repository's source, as service: source."""
    return [
        f"{name}: {volume['source']}"
        for name, service in config["services"].items()
        for volume in service.get("volumes", [])
        if volume.get("type") == "bind" and str(ROOT / "services") in volume["source"]
    ]


@pytest.mark.parametrize(
    "files",
    [
        ("compose.yaml",),
        ("compose.yaml", "compose.prod.yaml"),
        ("compose.yaml", "compose.prod.yaml", "compose.tls.yaml"),
        ("compose.yaml", "deploy/compose.pushed.yaml"),
    ],
    ids=["base", "prod", "prod-tls", "pushed"],
)
def test_only_the_development_override_mounts_source(files):
    assert source_mounts(pushed_compose_config(*files)) == []


def test_the_development_override_mounts_the_app_read_only():
    config = pushed_compose_config(*DEV_FILES)
    assert sorted(source_mounts(config)) == [
        f"nginx: {ROOT / 'services/web/app/static'}",
        f"web: {ROOT / 'services/web/app'}",
    ]
    assert all(volume["read_only"] for service in config["services"].values() for volume in service.get("volumes", []))
