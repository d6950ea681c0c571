"""The release workflow (.github/workflows/release.yml) cannot drift from the Makefile: its
release job's commands run here, in the file's order, against a real registry server on
127.0.0.1 and a local STAND-IN for CloudFormation's and ECS's APIs (ecs_stand_in.py, never
AWS). Its actions are pinned by commit, and its linters refuse the shapes they must."""

import os
import platform
import re
import secrets
import shutil
import subprocess

import pytest
import yaml

from aws_stand_in import VENV_BIN
from composed import ROOT
from ecs_stand_in import (
    DEPLOY_CALLS,
    EXAMPLE_DATABASE,
    EXAMPLE_NETWORK,
    MIGRATION_CALLS,
    PLAN_CALLS,
    STAND_IN_SETTINGS,
    WAIT_STABLE_CALLS,
    ecs_stand_in,
)
from registry import (
    SBOM_PACKAGES,
    RegistryClient,
    check_sbom_describes,
    docker_login,
    forget_local_images,
    image_tags,
    read_env_file,
    registry_server,
)

WORKFLOW = ROOT / ".github/workflows/release.yml"
LINT_BIN = ROOT / ".venv-lint/bin"
# The engine's CPU, as Docker names it.
ARCHITECTURE = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
# What a step's `uses:` must look like: an action pinned by a full commit, its version named.
PINNED_USES = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def evaluate(text, values):
    """The workflow's ${{ ... }} expressions replaced by the test's values; an expression
    the test does not know fails it, so a new one is met here first."""

    def replace(match):
        expression = match.group(1).strip()
        if expression not in values:
            raise AssertionError(f"release.yml: the test has no value for ${{{{ {expression} }}}}")
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", replace, text)


def test_every_action_is_pinned_by_a_full_commit_with_its_version_named():
    uses = [line for line in WORKFLOW.read_text().splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert uses, "no action found"
    assert [line for line in uses if not PINNED_USES.match(line)] == []


def test_the_jobs_call_make_targets_that_exist():
    jobs = workflow()["jobs"]
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    commands = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    assert commands == [
        "make lint",
        "make test",
        "scripts/docker-host/install-qemu.sh && scripts/install-sbom-tools.sh",
        "make push",
        "make ecs-validate",
        "make ecs-deploy",
        "make ecs-wait-stable",
    ]
    assert {command.split()[1] for command in commands if command.startswith("make ")} <= targets
    # The rest set the runner up with the scripts a person runs on a machine of their own.
    scripts = [word for command in commands if not command.startswith("make ") for word in command.split("&&")]
    assert all((ROOT / script.strip()).is_file() for script in scripts), scripts
    # The release waits for the tests, and only it may ask for an OIDC token.
    assert jobs["release"]["needs"] == "test"
    assert workflow()["permissions"] == {} and "id-token" not in jobs["test"]["permissions"]


def lint_workflow(folder):
    zizmor = LINT_BIN / "zizmor"
    if not zizmor.exists():
        pytest.fail("zizmor not installed: run scripts/install-linters.sh (make lint does)")
    return subprocess.run(
        [str(zizmor), "--offline", "--persona=pedantic", "--show-audit-urls=never", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "original, broken, audit",
    [
        (
            "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
            "actions/checkout@v7",
            "unpinned-uses",
        ),
        ("run: make push", "run: make push RELEASE_TAG=${{ github.ref_name }}", "template-injection"),
        # The OIDC permission for the whole workflow, every job's.
        ("permissions: {}", "permissions:\n  id-token: write\n  contents: read", "excessive-permissions"),
    ],
    ids=["a tag-pinned action", "an expression in a command", "a workflow-wide token"],
)
def test_the_workflow_linter_refuses_a_broken_copy(tmp_path, original, broken, audit):
    assert lint_workflow(WORKFLOW.parent).returncode == 0
    text = WORKFLOW.read_text()
    assert original in text
    folder = tmp_path / ".github/workflows"
    folder.mkdir(parents=True)
    (folder / "release.yml").write_text(text.replace(original, broken, 1))

    result = lint_workflow(folder)

    assert result.returncode != 0 and audit in result.stdout + result.stderr, result.stdout


@pytest.fixture
def pushed_images_file():
    """deploy/pushed-images.env (and its SBOMs' folder), where the workflow's push writes and
    its artifact is read: put back as they were (or removed) when the test ends."""
    path = ROOT / "deploy/pushed-images.env"
    sboms = ROOT / "deploy/pushed-images-sboms"
    before = path.read_bytes() if path.exists() else None
    sboms_before = {file: file.read_bytes() for file in sboms.glob("*")} if sboms.is_dir() else None
    yield path
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)
    if sboms_before is None:
        shutil.rmtree(sboms, ignore_errors=True)
    else:
        for file in sboms.glob("*"):
            file.unlink()
        for file, content in sboms_before.items():
            file.write_bytes(content)


def test_the_release_jobs_commands_run_in_order_against_a_local_registry_and_the_aws_stand_in(
    tmp_path, pushed_images_file
):
    job = workflow()["jobs"]["release"]
    password = secrets.token_urlsafe(16)
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    with registry_server(tmp_path / "registry", {"pusher": password}) as host, ecs_stand_in() as (stand_in, endpoint):
        try:
            docker_login(host, "pusher", password, {**os.environ, "DOCKER_CONFIG": str(docker_config)})
            stack = "shop"
            stand_in.add_stack(stack, {**EXAMPLE_NETWORK, **EXAMPLE_DATABASE, "WebImage": "old", "NginxImage": "old"})
            release = f"v9.{secrets.randbelow(1000)}.0"
            values = {
                "vars.ECR_REGISTRY": host,
                "vars.ECS_STACK_NAME": stack,
                # Empty, as when the variable is not set: make push's own default applies.
                "vars.IMAGE_REPOSITORY_PREFIX": "",
                "vars.ECS_PARAMETERS": " ".join(
                    f"{key}={value}" for key, value in {**EXAMPLE_NETWORK, **EXAMPLE_DATABASE}.items()
                ),
                "vars.AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/stand-in-release",
                "vars.AWS_REGION": "eu-west-1",
                # Pushed as a version tag: the images get the release tag beside the commit.
                "github.ref_type == 'tag' && github.ref_name || ''": release,
                "github.sha": "0" * 40,
            }
            env = {key: evaluate(str(value), values) for key, value in job["env"].items()}
            env = {
                **os.environ,
                **env,
                **STAND_IN_SETTINGS,
                "AWS_ENDPOINT_URL": endpoint,
                "DOCKER_CONFIG": str(docker_config),
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
                # This checkout may hold uncommitted work; CI's fresh clone does not.
                "ALLOW_DIRTY": "1",
                # The workflow pushes both CPUs; here only this machine's, as the other is built
                # under emulation for many minutes. make test-arm64 pushes both the same way.
                "PLATFORMS": f"linux/{ARCHITECTURE}",
            }
            assert env["PLATFORMS"] != evaluate(job["env"]["PLATFORMS"], values), "the workflow's own"
            ran = []
            for step in job["steps"]:
                action = step.get("uses", "").split("@")[0]
                if action == "actions/checkout":
                    continue  # this checkout
                if action == "aws-actions/configure-aws-credentials":
                    # Its work, done by the stand-in's settings above: credentials and a region.
                    assert evaluate(step["with"]["aws-region"], values) == env["AWS_REGION"]
                    continue
                if action == "actions/upload-artifact":
                    # The release's record exists where the artifact is read: the digests, and
                    # the SBOM of each image they name.
                    env_file, sbom_folder = step["with"]["path"].split()
                    recorded = read_env_file(ROOT / env_file)
                    assert recorded["PUSHED_WEB_IMAGE"].startswith(f"{host}/flask-stack/web@sha256:")
                    kept = sorted(file.name for file in (ROOT / sbom_folder).iterdir())
                    assert kept == [f"nginx-{ARCHITECTURE}.cdx.json", f"web-{ARCHITECTURE}.cdx.json"], kept
                    ran.append("artifact")
                    continue
                assert "uses" not in step, f"a step the test does not know: {step}"
                result = subprocess.run(
                    ["bash", "-e", "-c", evaluate(step["run"], values)],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=1200,
                    check=False,
                )
                assert result.returncode == 0, f"{step['run']}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                ran.append(step["run"])
            assert ran == [
                "scripts/docker-host/install-qemu.sh && scripts/install-sbom-tools.sh",
                "make push",
                "artifact",
                "make ecs-validate",
                "make ecs-deploy",
                "make ecs-wait-stable",
            ]

            pushed = read_env_file(pushed_images_file)
            registry = RegistryClient(host, "pusher", password)
            for name in ("web", "nginx"):
                digest = pushed[f"PUSHED_{name.upper()}_IMAGE"].partition("@")[2]
                tags = image_tags(registry.tags(f"flask-stack/{name}"))
                assert release in tags and len(tags) == 2, tags
                assert registry.manifest(f"flask-stack/{name}", release)[0] == digest
                _, sbom = registry.sbom(f"flask-stack/{name}", digest)
                check_sbom_describes(
                    registry, f"flask-stack/{name}", digest, sbom, f"linux/{ARCHITECTURE}", SBOM_PACKAGES[name]
                )
            # Migrated with the pushed web image, then deployed with both digests, then waited on.
            assert stand_in.calls == PLAN_CALLS + MIGRATION_CALLS + DEPLOY_CALLS + WAIT_STABLE_CALLS
            (definition,) = stand_in.task_definitions
            assert definition["containerDefinitions"][1]["image"] == pushed["PUSHED_WEB_IMAGE"]
            (deployed,) = stand_in.deployed_parameters()
            assert deployed["WebImage"] == pushed["PUSHED_WEB_IMAGE"]
            assert deployed["NginxImage"] == pushed["PUSHED_NGINX_IMAGE"]
        finally:
            forget_local_images(host)
            shutil.rmtree(docker_config, ignore_errors=True)
