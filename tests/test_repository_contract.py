"""The repository keeps its promises to users: every knob the code reads documented with the
default the code gives it, each default written once, the app apart from the stack, and a
self-describing Makefile."""

import ast
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from knobs import (
    COMPOSE_FILES,
    INTERPOLATION,
    NGINX_DEFAULTS,
    acme_reads,
    compose_interpolations,
    nginx_defaults,
    nginx_knobs,
    service_environments,
    value_of,
    web_reads,
)

from composed import ROOT, compose_config

# Variables the code reads that are not a user's to set, each with the reason. The test
# below fails if one is no longer read, or no longer set by the image or the stack itself.
NOT_KNOBS = {
    # prometheus_client's multiprocess folder: the web image's ENV sets it (services/web/Dockerfile).
    "PROMETHEUS_MULTIPROC_DIR",
    # What gunicorn's master found at start, handed to its workers through the environment
    # (gunicorn.conf.py's on_starting) for /api/whoami and /api/settings.
    "SERVER_WORKER_CLASS",
    "SERVER_SETTINGS",
}


def documented_knobs():
    """{name: value} of the `NAME=value` lines of .env.example."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))


def reads_by_name():
    reads, _ = web_reads()
    found = {}
    for read in reads:
        found.setdefault(read.name, []).append(read)
    return found


def code_knobs():
    """Each knob the web image's Python, nginx's templates and scripts or the acme image read."""
    return (set(reads_by_name()) | set(nginx_knobs()) | {read.name for read in acme_reads()}) - NOT_KNOBS


def reader_calls(name):
    """The web image's calls to its env reader for this knob (there may be several)."""
    calls = [read for read in reads_by_name().get(name, []) if read.call]
    assert calls or name not in reads_by_name(), f"{name} is read without the stack's reader (stack/env.py)"
    return calls


def chosen_by_compose_files():
    """Knobs a compose file sets from something other than the knob itself (NGINX_TLS: "on"
    in compose.tls.yaml): adding that file is how they are chosen, not .env."""
    chosen = set()
    for name in COMPOSE_FILES:
        for environment in service_environments(ROOT / name).values():
            for var, value in environment.items():
                if not re.search(rf"\$\{{{var}\b", str(value)):
                    chosen.add(var)
    return chosen


def restates_default(name, value):
    """Whether `value`, given to the knob `name`, is what the image does with it unset."""
    calls = reader_calls(name)
    if calls:
        return all(value_of(call, {name: value}) == value_of(call, {}) for call in calls)
    defaults = nginx_defaults()
    if name in defaults:
        return value == defaults[name]
    return False


def effective(value):
    """A compose value with each ${VAR:-default} in it at its default: what it is when unset."""
    return INTERPOLATION.sub(lambda match: match.group(3) or "", str(value))


# --- Every knob documented, with the code's default -------------------------------------


def test_the_collector_finds_knobs_read_each_way_the_code_reads_them(tmp_path):
    from knobs import reads_in

    source = (
        "import os\nfrom stack import env\nfrom stack.env import whole\n"
        "def settings(environ, start_response=None):\n"
        "    a = env.text(environ, 'KNOB_A', 'x')\n"
        "    b = whole(environ, 'KNOB_B', 3)\n"
        "    c = os.environ.get('KNOB_C')\n"
        "    d = os.environ['KNOB_D']\n"
        "    e = os.getenv('KNOB_E')\n"
        "    f = environ.get('KNOB_F', '')\n"
        "    g = environ.get('PATH_INFO', '')\n"
        "    os.environ['SET_HERE'] = 'y'\n"
    )
    reads, writes = reads_in(source, tmp_path / "module.py")
    assert sorted(read.name for read in reads) == ["KNOB_A", "KNOB_B", "KNOB_C", "KNOB_D", "KNOB_E", "KNOB_F"]
    assert writes == {"SET_HERE"}


def test_every_knob_the_code_reads_is_in_env_example_and_the_docs():
    knobs = code_knobs()
    # The collector sees the code: the knobs every version of the stack has read.
    assert {"GUNICORN_WORKERS", "APP_PROBES", "NGINX_PROXY_READ_TIMEOUT", "WEB_UPSTREAM"} <= knobs
    missing = sorted(knobs - set(documented_knobs()) - chosen_by_compose_files())
    assert not missing, f"read by the code but not in .env.example: {missing}"
    docs = (ROOT / "docs" / "configuration.md").read_text()
    undocumented = sorted(name for name in knobs | set(documented_knobs()) if f"`{name}`" not in docs)
    assert not undocumented, f"not in docs/configuration.md: {undocumented}"


def test_what_is_not_a_knob_is_still_read_and_set_by_the_stack_itself():
    reads, writes = web_reads()
    read = {r.name for r in reads}
    image_env = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", (ROOT / "services/web/Dockerfile").read_text()))
    for name in NOT_KNOBS:
        assert name in read, f"{name} is no longer read: drop it from NOT_KNOBS"
        assert name in writes | image_env, f"{name} is neither set by the stack nor by the image: a knob?"


def test_env_example_documents_nothing_that_does_not_exist():
    # Each line of .env.example reaches compose: a knob of the images is passed through.
    assert set(documented_knobs()) == set(compose_interpolations())


def test_env_example_gives_each_knob_the_default_the_code_gives_it():
    documented = documented_knobs()
    defaults = nginx_defaults()
    for name, uses in compose_interpolations(("compose.yaml",)).items():
        compose_defaults = {default for _, operator, default in uses if operator == ":-" and default}
        if compose_defaults:
            # compose.yaml's own default wins over the image's (APP_PROBES is on in development).
            assert compose_defaults == {documented[name]}, f"{name}: .env.example and compose.yaml disagree"
        elif reader_calls(name):
            assert restates_default(name, documented[name]), (
                f"{name}: .env.example says {documented[name]!r}, which is not the web image's default"
            )
        elif name in defaults:
            assert documented[name] == defaults[name], (
                f"{name}: .env.example says {documented[name]!r}, {NGINX_DEFAULTS.name} {defaults[name]!r}"
            )
        else:
            pytest.fail(f"{name} is passed on by compose.yaml, but no image reads it")


def test_env_example_gives_each_acme_knob_the_acme_images_default():
    from renewal import settings

    documented = documented_knobs()
    required = {"ACME_DOMAINS": "shop.example.com"}
    read = {read.name for read in acme_reads()}
    assert read == {"ACME_DOMAINS", "ACME_EMAIL", "ACME_DIRECTORY", "ACME_CHECK_INTERVAL", "ACME_RETRY_INTERVAL"}
    for name in read - set(required):
        assert settings.load({**required, name: documented[name]}) == settings.load(required), (
            f"{name}: .env.example says {documented[name]!r}, which is not the acme image's default"
        )
    # Required, with no default: compose.acme.yaml refuses to start without it.
    assert documented["ACME_DOMAINS"] == ""


def test_a_knob_read_in_several_places_gets_the_same_default_in_each():
    for name, reads in reads_by_name().items():
        values = [value_of(read, {}) for read in reads if read.call]
        assert all(value == values[0] for value in values), f"{name}: {[read.where() for read in reads]} disagree"


# --- Each default written once ----------------------------------------------------------


def test_every_nginx_setting_has_its_default_in_the_one_defaults_file():
    defaults = nginx_defaults()
    read = {name for name, files in nginx_knobs().items() if files != [NGINX_DEFAULTS]}
    # Unset, a variable would reach nginx's config as the text ${NAME}.
    assert read - set(defaults) == set(), "read by nginx's templates or scripts without a default"
    assert set(defaults) - read == set(), "a default nothing reads"
    dockerfile = (ROOT / "services/nginx/Dockerfile").read_text().replace("\\\n", " ")
    env_lines = " ".join(re.findall(r"^ENV\s+(.*)$", dockerfile, re.MULTILINE))
    restated = [name for name in defaults if re.search(rf"\b{name}=", env_lines)]
    assert not restated, f"also set by the Dockerfile's ENV: {restated}"


def image_knob_values():
    """(where, name, value) of each image knob a compose file, the Swarm stack or the ECS
    task sets, with the value it has when nothing else is set."""
    base = {
        service: {var: effective(value) for var, value in env.items()}
        for service, env in service_environments(ROOT / "compose.yaml").items()
    }
    knobs = code_knobs()
    for name in (*COMPOSE_FILES, "deploy/swarm/stack.yaml"):
        for service, environment in service_environments(ROOT / name).items():
            for var, value in environment.items():
                if var not in knobs:
                    continue
                # An overlay may put back the image's default over compose.yaml's own.
                overlay = name in COMPOSE_FILES and name != "compose.yaml"
                if overlay and effective(value) != base.get(service, {}).get(var, effective(value)):
                    continue
                yield f"{name}: {service}", var, effective(value)
    for container in ecs_containers():
        for pair in container.get("Environment", []):
            # A pair under !If loads as None (the short forms below): only plain pairs count.
            if isinstance(pair, dict) and pair["Name"] in knobs and isinstance(pair["Value"], str):
                yield f"deploy/ecs/template.yaml: {container['Name']}", pair["Name"], pair["Value"]


def ecs_containers():
    """The container definitions of the ECS template's task definitions."""
    # CloudFormation's short forms (!Ref ...) only need to load: none is a default.
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "deploy/ecs/template.yaml").read_text(), Loader=loader)  # noqa: S506 a SafeLoader
    return [
        container
        for resource in template["Resources"].values()
        for container in resource.get("Properties", {}).get("ContainerDefinitions", [])
        # A container under !If (only with a database) loads as None.
        if container is not None
    ]


def test_compose_swarm_and_ecs_state_only_what_differs_from_the_images_defaults():
    seen = list(image_knob_values())
    assert any(where.startswith("deploy/ecs") for where, _, _ in seen), "no ECS container environment found"
    assert any(where.startswith("deploy/swarm") for where, _, _ in seen), "no Swarm environment found"
    restated = [f"{where}: {name}={value}" for where, name, value in seen if value and restates_default(name, value)]
    assert not restated, f"restates the image's default (leave it out, or pass ${{NAME:-}}): {restated}"


def test_the_restatement_check_catches_a_restated_default():
    # The values the images default to, as a deployment file would restate them.
    assert restates_default("NGINX_PROXY_READ_TIMEOUT", nginx_defaults()["NGINX_PROXY_READ_TIMEOUT"])
    assert restates_default("APP_PROBES", "off") and not restates_default("APP_PROBES", "on")
    assert not restates_default("NGINX_PROXY_CONNECT_TIMEOUT", "500ms")


def dockerfile_healthcheck(path):
    """(options, command) of a Dockerfile's HEALTHCHECK, the command as its JSON list."""
    text = (ROOT / path).read_text().replace("\\\n", " ")
    options, command = re.search(r"^HEALTHCHECK\s+(.*?)\s*CMD\s+(\[.*\])\s*$", text, re.MULTILINE).groups()
    return dict(re.findall(r"--([a-z-]+)=(\S+)", options)), ["CMD", *yaml.safe_load(command)]


def test_the_health_checks_are_the_images_own():
    services = compose_config("compose.yaml")["services"]
    assert "healthcheck" not in services["web"], "compose.yaml restates web's HEALTHCHECK"
    swarm = yaml.safe_load((ROOT / "deploy/swarm/stack.yaml").read_text())["services"]
    for name in ("web", "nginx"):
        options, command = dockerfile_healthcheck(f"services/{name}/Dockerfile")
        for where, check in (
            ("compose.yaml", services[name].get("healthcheck", {})),
            ("swarm", swarm[name].get("healthcheck", {})),
        ):
            same = [key for key, value in check.items() if options.get(key.replace("_", "-")) == str(value)]
            assert not same and check.get("test") != command, f"{where} {name} restates the image's {same or 'test'}"
    # ECS ignores an image's HEALTHCHECK: the task states web's, which must be the image's.
    (web,) = [container for container in ecs_containers() if container["Name"] == "web"]
    assert web["HealthCheck"]["Command"] == dockerfile_healthcheck("services/web/Dockerfile")[1]


def test_each_base_image_tag_is_written_once():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dockerfiles = [path for path in tracked if path.startswith("services/") and path.endswith("Dockerfile")]
    args = {
        name: (tag, path)
        for path in dockerfiles
        for name, tag in re.findall(r"^ARG ([A-Z_]*IMAGE)=(\S+)", (ROOT / path).read_text(), re.MULTILINE)
    }
    assert {"PYTHON_IMAGE", "NGINX_IMAGE"} <= set(args)
    tags = dict(args.values())
    # bench/reference holds what past runs recorded, not settings.
    for path in tracked:
        if path.startswith("bench/reference/") or not (ROOT / path).is_file():
            continue
        text = (ROOT / path).read_text(errors="ignore")
        for tag, home in tags.items():
            assert path == home or tag not in text, f"{path} repeats {tag}, which {home}'s ARG names"


# --- The app apart from the stack ---------------------------------------------------------


def stack_imports(folder):
    """`file:line` of each import of the stack package in a folder of Python files."""
    found = []
    for path in sorted(Path(folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "__import__"):
                modules = [node.args[0].value] if node.args and isinstance(node.args[0], ast.Constant) else []
            else:
                continue
            if any(module == "stack" or module.startswith("stack.") for module in modules):
                found.append(f"{path.relative_to(folder)}:{node.lineno}")
    return found


def test_the_app_imports_nothing_from_the_stack():
    # The stack wraps the app from outside; an app that imports it could not be dropped in.
    assert stack_imports(ROOT / "services/web/app") == []


@pytest.mark.parametrize(
    "line",
    ["import stack", "from stack.settings import DEFAULTS", "import importlib; importlib.import_module('stack.env')"],
)
def test_the_import_check_catches_an_app_that_imports_the_stack(tmp_path, line):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("import json\nfrom flask import Flask\n")
    (tmp_path / "app" / "views.py").write_text(f"import os\n{line}\n")
    assert stack_imports(tmp_path / "app") == ["views.py:2"]


# --- The Makefile, compose and the README ----------------------------------------------------


def test_make_alone_prints_help_listing_the_main_targets():
    output = subprocess.run(["make"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30).stdout
    for target in ("up", "down", "logs", "ps", "build", "scale", "test", "prod-up"):
        assert re.search(rf"make {target}\s", output), f"`make` does not list {target}:\n{output}"


def seconds(duration):
    """Compose renders durations as Go strings such as 35s or 1m0s."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def test_nginx_waits_for_a_healthy_web():
    services = compose_config("compose.yaml")["services"]
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_only_nginx_publishes_a_port():
    for files, ports in (
        (("compose.yaml",), [8080]),
        (("compose.yaml", "compose.prod.yaml"), [8080]),
        # TLS adds HTTPS beside plain HTTP (which redirects to it).
        (("compose.yaml", "compose.prod.yaml", "compose.tls.yaml"), [8080, 8443]),
    ):
        services = compose_config(*files)["services"]
        assert not services["web"].get("ports")
        assert sorted(p["target"] for p in services["nginx"]["ports"]) == ports
        for published in services["nginx"]["ports"]:
            assert published["host_ip"] == "127.0.0.1", published


def web_setting(name, environ):
    """What the web image makes of `environ` for this knob."""
    (read, *_) = reader_calls(name)
    return value_of(read, environ)


def test_stop_grace_period_outlasts_the_drain_and_gunicorns_graceful_timeout():
    web = compose_config("compose.yaml")["services"]["web"]
    # What the web image makes of the environment compose gives it (empty: its defaults).
    environ = {k: v or "" for k, v in web["environment"].items()}
    drain = web_setting("GUNICORN_DRAIN_SECONDS", environ)
    graceful = web_setting("GUNICORN_GRACEFUL_TIMEOUT", environ)
    assert seconds(web["stop_grace_period"]) > drain + graceful


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


def test_the_readme_stays_short_enough_to_read_first():
    """Detail belongs in docs/; the README is what a team reads before copying the stack."""
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 12 * 1024, f"README.md is {size} bytes: move detail to docs/"
