"""The repository keeps its promises to users: documented knobs and a self-describing Makefile."""

import json
import re
import subprocess

from composed import ROOT

COMPOSE_FILES = ("compose.yaml", "compose.override.yaml", "compose.prod.yaml", "compose.tls.yaml")


def documented_knobs():
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))


def compose_knobs(files=COMPOSE_FILES):
    """Each ${VAR:-default} used in the compose files, with its default."""
    knobs = {}
    for name in files:
        for var, default in re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", (ROOT / name).read_text()):
            knobs[var] = default
    return knobs


def stack_settings(environ):
    """Everything the web image derives from its environment (services/web/stack/)."""
    from stack.gunicorn_settings import lifecycle_settings_from_env
    from stack.gunicorn_settings import settings_from_env as gunicorn_settings_from_env
    from stack.settings import settings_from_env

    return gunicorn_settings_from_env(environ, cpus=2), lifecycle_settings_from_env(environ), settings_from_env(environ)


def test_every_compose_knob_is_documented_with_its_default():
    documented = documented_knobs()
    for var, default in compose_knobs(("compose.yaml",)).items():
        assert var in documented, f"{var} is used in compose files but missing from .env.example"
        if default == "" and documented[var] != "":
            # Passed through: the default is the web image's own, defined once in stack/.
            assert stack_settings({var: documented[var]}) == stack_settings({}), (
                f"{var}: .env.example says {documented[var]!r}, which is not the stack's default"
            )
        else:
            assert documented[var] == default, f"{var}: .env.example says {documented[var]!r}, compose uses {default!r}"


def test_env_example_documents_nothing_that_does_not_exist():
    assert set(documented_knobs()) == set(compose_knobs())


def test_make_alone_prints_help_listing_the_main_targets():
    output = subprocess.run(["make"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30).stdout
    for target in ("up", "down", "logs", "ps", "build", "scale", "test", "prod-up"):
        assert re.search(rf"make {target}\s", output), f"`make` does not list {target}:\n{output}"


def compose_config(*files):
    args = [arg for name in files for arg in ("-f", name)]
    output = subprocess.run(
        ["docker", "compose", *args, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(output)["services"]


def seconds(duration):
    """Compose renders durations as Go strings such as 35s or 1m0s."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def test_nginx_waits_for_a_healthy_web_and_both_have_healthchecks():
    services = compose_config("compose.yaml")
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    for name in ("web", "nginx"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name


def test_only_nginx_publishes_a_port():
    for files, ports in (
        (("compose.yaml",), [8080]),
        (("compose.yaml", "compose.prod.yaml"), [8080]),
        # TLS adds HTTPS beside plain HTTP (which redirects to it).
        (("compose.yaml", "compose.prod.yaml", "compose.tls.yaml"), [8080, 8443]),
    ):
        services = compose_config(*files)
        assert not services["web"].get("ports")
        assert sorted(p["target"] for p in services["nginx"]["ports"]) == ports
        for published in services["nginx"]["ports"]:
            assert published["host_ip"] == "127.0.0.1", published


def test_stop_grace_period_outlasts_the_drain_and_gunicorns_graceful_timeout():
    web = compose_config("compose.yaml")["web"]
    # What the web image makes of the environment compose gives it (empty: its defaults).
    gunicorn, lifecycle, _ = stack_settings({k: v or "" for k, v in web["environment"].items()})
    assert seconds(web["stop_grace_period"]) > lifecycle["drain_seconds"] + gunicorn["graceful_timeout"]


def guarantee_rows():
    """The README's "What happens when" table: (when, proven by) for each row."""
    section = (ROOT / "README.md").read_text().split("## What happens when", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return [(cells[0].strip("| "), cells[-1].strip(" |")) for cells in rows[1:]]


def test_every_guarantee_in_the_readme_names_a_test_that_exists():
    rows = guarantee_rows()
    assert len(rows) >= 10, rows
    for when, proven_by in rows:
        (reference,) = re.findall(r"`([^`]+)`", proven_by)
        path, _, name = reference.partition("::")
        files = sorted(ROOT.glob(path))
        assert files, f"{when}: {path} matches no file"
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", files[0].read_text(), flags=re.MULTILINE), (
                f"{when}: {reference} is not a test"
            )
