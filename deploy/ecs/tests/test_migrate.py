"""make ecs-migrate and make ecs-deploy against a local STAND-IN for CloudFormation and ECS
(ecs_stand_in.py, never AWS), through the real AWS CLI: the migration runs as a one-off
task before the service rolls, and a failed one stops the deploy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import migrate
import pytest
from ecs_examples import DATABASE_PARAMETERS, IMAGES

from ecs_stand_in import (
    DEPLOY_CALLS,
    EXAMPLE_NETWORK,
    MIGRATION_CALLS,
    OUTPUTS,
    PLAN_CALLS,
    STAND_IN_SETTINGS,
    ecs_stand_in,
)

ECS_DIR = Path(__file__).resolve().parents[1]
DEPLOY = ECS_DIR / "deploy.sh"
STACK = "shop"
NETWORK = EXAMPLE_NETWORK
WITH_DATABASE = {**NETWORK, **DATABASE_PARAMETERS}


@pytest.fixture
def stand_in():
    with ecs_stand_in() as (state, endpoint):
        state.endpoint = endpoint
        yield state


def parameters_text(parameters):
    return " ".join(f"{key}={value}" for key, value in parameters.items())


def run(script, stand_in, images_file, parameters, **environment):
    """A script of deploy/ecs with the venv's AWS CLI pointed at the stand-in, with stand-in
    credentials: nothing here reaches or could reach AWS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUSHED_", "ECS_", "AWS_"))}
    env.update(STAND_IN_SETTINGS)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AWS_ENDPOINT_URL=stand_in.endpoint,
        ECS_PYTHON=sys.executable,
        ECS_STACK_NAME=STACK,
        ECS_PARAMETERS=parameters_text(parameters),
        PUSHED_IMAGES_FILE=str(images_file),
        **environment,
    )
    command = [str(script)] if script.suffix == ".sh" else [sys.executable, str(script)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_a_release_with_a_database_migrates_then_rolls_the_service(stand_in, images_file):
    stand_in.add_stack(STACK, {**WITH_DATABASE, "WebImage": "old", "NginxImage": "old"})

    result = run(DEPLOY, stand_in, images_file, WITH_DATABASE)

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == PLAN_CALLS + MIGRATION_CALLS + DEPLOY_CALLS
    # The migration: the new web image, alembic, the password's one-shot writer, no nginx.
    (definition,) = stand_in.task_definitions
    assert definition["family"] == f"{STACK}-migrate"
    writer, migration = definition["containerDefinitions"]
    assert writer["name"] == "db-password" and writer["image"] == IMAGES["PUSHED_WEB_IMAGE"]
    assert migration["name"] == "migrate" and migration["image"] == IMAGES["PUSHED_WEB_IMAGE"]
    assert migration["command"] == ["alembic", "upgrade", "head"]
    assert definition["executionRoleArn"] == OUTPUTS["ExecutionRoleArn"]
    # ...in the service's subnets and security group, on Fargate.
    (run_task,) = stand_in.runs
    assert run_task["launchType"] == "FARGATE" and run_task["cluster"] == OUTPUTS["ClusterName"]
    assert run_task["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": OUTPUTS["PrivateSubnetIds"].split(","),
        "securityGroups": [OUTPUTS["TaskSecurityGroupId"]],
        "assignPublicIp": "DISABLED",
    }
    # Then the deploy, with the new digests.
    (deployed,) = stand_in.deployed_parameters()
    assert deployed["WebImage"] == IMAGES["PUSHED_WEB_IMAGE"]
    assert "the migrations are applied (exit 0" in result.stdout


def test_a_failed_migration_stops_the_deploy_and_the_old_release_keeps_serving(stand_in, images_file):
    stand_in.add_stack(STACK, {**WITH_DATABASE, "WebImage": "old", "NginxImage": "old"})
    stand_in.migration_exit_code = 3

    result = run(DEPLOY, stand_in, images_file, WITH_DATABASE)

    assert result.returncode != 0
    assert stand_in.calls == PLAN_CALLS + MIGRATION_CALLS, "nothing after the failed migration"
    assert stand_in.stacks[STACK]["parameters"]["WebImage"] == "old"
    assert "ecs-migrate: the migration exited 3 (Essential container in task exited)" in result.stderr
    assert f"log group /ecs/{STACK}, stream migrate/migrate/" in result.stderr


def test_a_database_new_to_the_stack_is_granted_with_the_old_images_then_migrated_then_the_release_rolls(
    stand_in, images_file
):
    stand_in.add_stack(STACK, {**NETWORK, "WebImage": "old", "NginxImage": "old"})

    result = run(DEPLOY, stand_in, images_file, WITH_DATABASE)

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == PLAN_CALLS + DEPLOY_CALLS + MIGRATION_CALLS + DEPLOY_CALLS
    granting, releasing = stand_in.deployed_parameters()
    # The first deploy keeps the images the stack runs (the CLI sends UsePreviousValue).
    assert granting["WebImage"] is None and granting["DatabaseHost"] == WITH_DATABASE["DatabaseHost"]
    assert releasing["WebImage"] == IMAGES["PUSHED_WEB_IMAGE"]


def test_a_database_whose_key_changes_is_granted_first_too(stand_in, images_file):
    stand_in.add_stack(STACK, {**WITH_DATABASE, "WebImage": "old", "NginxImage": "old"})
    key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"

    result = run(DEPLOY, stand_in, images_file, {**WITH_DATABASE, "DatabasePasswordKmsKeyArn": key})

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == PLAN_CALLS + DEPLOY_CALLS + MIGRATION_CALLS + DEPLOY_CALLS


def test_a_migration_past_its_timeout_is_stopped_and_fails_the_deploy(stand_in, images_file):
    stand_in.add_stack(STACK, {**WITH_DATABASE, "WebImage": "old", "NginxImage": "old"})
    stand_in.tasks_hang = True

    result = run(DEPLOY, stand_in, images_file, WITH_DATABASE, ECS_MIGRATION_TIMEOUT="1")

    assert result.returncode != 0
    (task,) = stand_in.tasks
    assert stand_in.stopped == [task]
    assert stand_in.calls[-2:] == ["ecs:DescribeTasks", "ecs:StopTask"], "stopped, and nothing deployed"
    assert f"the migration task {task} ran past 1 s (ECS_MIGRATION_TIMEOUT): stopped it" in result.stderr


@pytest.mark.parametrize(
    "recorded, architecture, refused",
    [
        ("linux/amd64", "ARM64", "CpuArchitecture ARM64 needs images for linux/arm64; make push built linux/amd64"),
        (None, "ARM64", "CpuArchitecture ARM64: make push recorded no PUSHED_PLATFORMS"),
        ("linux/amd64,linux/arm64", "ARM64", None),
        (None, "X86_64", None),
    ],
)
def test_a_cpu_the_pushed_images_were_not_built_for_is_refused_before_anything_runs(
    stand_in, images_file, recorded, architecture, refused
):
    stand_in.add_stack(STACK, {**NETWORK, "WebImage": "old", "NginxImage": "old"})
    if recorded:
        images_file.write_text(images_file.read_text() + f"PUSHED_PLATFORMS={recorded}\n")

    result = run(DEPLOY, stand_in, images_file, {**NETWORK, "CpuArchitecture": architecture})

    if refused:
        assert result.returncode == 1 and refused in result.stderr, result.stderr
        assert stand_in.calls == PLAN_CALLS, "nothing deployed"
    else:
        assert result.returncode == 0, result.stderr
        assert stand_in.calls == PLAN_CALLS + DEPLOY_CALLS


def test_without_a_database_a_deploy_migrates_nothing(stand_in, images_file):
    stand_in.add_stack(STACK, {**NETWORK, "WebImage": "old", "NginxImage": "old"})

    result = run(DEPLOY, stand_in, images_file, NETWORK)

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == PLAN_CALLS + DEPLOY_CALLS


def test_make_ecs_migrate_on_a_stack_without_its_cluster_says_to_deploy_first(stand_in, images_file):
    result = run(ECS_DIR / "migrate.py", stand_in, images_file, WITH_DATABASE)

    assert result.returncode == 1
    assert "the stack shop has no cluster yet: deploy it first (make ecs-deploy)" in result.stderr
    assert stand_in.calls == ["cloudformation:DescribeStacks"]


def test_the_dry_run_prints_the_commands_in_their_order(stand_in, images_file):
    result = run(DEPLOY, stand_in, images_file, WITH_DATABASE, DRY_RUN="1")

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == [], "a dry run calls nothing"
    commands = [" ".join(line.split()[:3]) for line in result.stdout.splitlines()]
    assert commands == [
        "aws cloudformation describe-stacks",
        "aws ecs register-task-definition",
        "aws ecs run-task",
        "aws ecs describe-tasks",
        "aws cloudformation deploy",
    ]
    assert IMAGES["PUSHED_WEB_IMAGE"] in result.stdout.splitlines()[1]


def stopped(exit_code=0, status="STOPPED", name="migrate"):
    container = {"name": name, "lastStatus": status}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {"tasks": [{"lastStatus": status, "containers": [container], "stoppedReason": "why"}]}


@pytest.mark.parametrize(
    "described, expected",
    [
        (stopped(status="RUNNING"), "has not stopped"),
        ({"tasks": [], "failures": [{"reason": "MISSING"}]}, "does not know task"),
    ],
)
def test_a_task_that_has_not_stopped_or_is_unknown_is_a_failure(described, expected):
    with pytest.raises(migrate.Failed, match=expected):
        migrate.verdict(described, "arn:task")


def test_a_migration_container_without_an_exit_code_is_not_a_success():
    # A task that stopped before the container ran (an image pull failure, a secret the role
    # could not read) has no exit code: only 0 is success.
    assert migrate.verdict(stopped(exit_code=None), "arn:task") == (None, "why")
    assert migrate.verdict(stopped(name="web"), "arn:task")[0] is None


def test_the_plan_reads_the_deployed_database_against_the_one_to_deploy():
    deployed = {"parameters": dict(WITH_DATABASE), "outputs": dict(OUTPUTS)}
    assert migrate.plan(deployed, {"ECS_PARAMETERS": ""}) == "before"
    other = {"ECS_PARAMETERS": "DatabaseHost=elsewhere.example"}
    assert migrate.plan(deployed, other) == "grant-first"
    assert migrate.plan(None, {"ECS_PARAMETERS": parameters_text(WITH_DATABASE)}) == "grant-first"
    assert migrate.plan({"parameters": dict(NETWORK), "outputs": dict(OUTPUTS)}, {"ECS_PARAMETERS": ""}) == "none"


def test_the_migration_definition_passes_botocores_ecs_model(images):
    import validate

    deployed = {"parameters": dict(WITH_DATABASE), "outputs": dict(OUTPUTS), "region": "us-east-2", "account": "1" * 12}
    definition = migrate.migration_definition(deployed, {"ECS_STACK_NAME": STACK}, images)
    # The log region is the stack's, whatever the caller's environment says.
    assert definition["containerDefinitions"][1]["logConfiguration"]["options"]["awslogs-region"] == "us-east-2"
    assert validate.botocore_messages(definition) == []
    assert json.dumps(definition).count("alembic") == 1


def test_waiting_for_the_service_reads_it_from_the_stack_and_asks_ecs(stand_in, images_file):
    stand_in.add_stack(STACK, {**NETWORK, "WebImage": "old", "NginxImage": "old"})

    result = run(ECS_DIR / "wait-stable.sh", stand_in, images_file, {})

    assert result.returncode == 0, result.stderr
    assert stand_in.calls == ["cloudformation:DescribeStacks"] * 2 + ["ecs:DescribeServices"]
    assert f"{OUTPUTS['ServiceName']} is stable" in result.stdout
