"""Run the database migrations on ECS as a one-off Fargate task (make ecs-migrate), and
tell make ecs-deploy whether they run before or after its deploy (--plan).

The task is the service's own task definition with web running `alembic upgrade head`
instead of gunicorn, and without nginx (render.migration_task_definition): the pushed web
image, the same execution role, database settings and password file, in the service's
subnets and security group. Registered, run once, waited for until it stops; this exits
non-zero unless the migration container exited 0, so make ecs-deploy stops before rolling
the service and the old release keeps serving.

It reads the stack (aws cloudformation describe-stacks): the cluster, role, subnets and
security group from its outputs, and the deployed parameters, over which ECS_PARAMETERS
wins, as `aws cloudformation deploy` will apply them. It calls the AWS CLI on PATH.
  ECS_STACK_NAME       the stack (default flask-stack)
  ECS_PARAMETERS       "Key=Value ..." the deploy is about to apply
  PUSHED_IMAGES_FILE   the digests (PUSHED_WEB_IMAGE in the environment wins)
  DRY_RUN              1: print the AWS CLI commands instead, with the values only the
                       stack knows as <placeholders>
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import cfn_template
import pushed_images
import render

# An AWS CLI call that only reads or starts something answers in seconds; one stuck on the
# network must not hold a release for ever.
CALL_TIMEOUT_S = 120
# `aws ecs wait tasks-stopped` gives up by itself after 100 polls 6 s apart; this is a bound
# above that, in case the CLI itself hangs.
WAIT_TIMEOUT_S = 15 * 60
STARTED_BY = "make-ecs-migrate"
# What make ecs-deploy does about the migrations, printed by --plan.
PLANS = ("none", "before", "after")


class Failed(Exception):
    """The migration did not succeed, or could not be run; the message says why."""


def aws(arguments, timeout=CALL_TIMEOUT_S):
    """The AWS CLI's standard output, or Failed with its error."""
    try:
        result = subprocess.run(["aws", *arguments], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise Failed(f"aws {' '.join(arguments[:2])}: no answer within {timeout} s") from None
    if result.returncode != 0:
        raise Failed(f"aws {' '.join(arguments[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def deployed_stack(stack_name):
    """{"parameters": {...}, "outputs": {...}} of the stack, or None if it does not exist."""
    try:
        described = json.loads(aws(describe_stack_command(stack_name)))
    except Failed as error:
        if "does not exist" in str(error):
            return None
        raise
    (stack,) = described["Stacks"]
    return {
        "parameters": {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])},
        "outputs": {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
    }


def deployment_parameters(stack, environ):
    """The parameters the deploy will apply: the stack's, with ECS_PARAMETERS over them."""
    parameters = dict(stack["parameters"]) if stack else {}
    parameters.update(render.given_parameters(environ))
    return parameters


def has_database(parameters):
    return bool(parameters.get("DatabaseHost") and parameters.get("DatabasePasswordSecretArn"))


def plan(stack, environ):
    """none: the deployment has no database. before: the stack already runs with this database
    (its cluster exists and its execution role may read this password), so the migrations run
    before the service rolls. after: the database is new to the stack (or the stack is), so the
    deploy must first grant the role the password; the migrations run right after it."""
    parameters = deployment_parameters(stack, environ)
    if not has_database(parameters):
        return "none"
    same_database = stack is not None and all(
        stack["parameters"].get(key) == parameters.get(key) for key in ("DatabaseHost", "DatabasePasswordSecretArn")
    )
    return "before" if same_database and "ClusterName" in stack["outputs"] else "after"


def migration_definition(stack, environ, images):
    """The migration's task definition, rendered with the deployment's parameters and role."""
    parameters = deployment_parameters(stack, environ)
    declared = cfn_template.load(render.TEMPLATE).get("Parameters", {})
    rendering = {
        **environ,
        "ECS_PARAMETERS": " ".join(
            f"{key}={value}"
            for key, value in parameters.items()
            if key in declared and key not in ("WebImage", "NginxImage") and value != ""
        ),
        "ECS_EXECUTION_ROLE_ARN": stack["outputs"]["ExecutionRoleArn"],
    }
    task_definition, _ = render.render(cfn_template.load(render.TEMPLATE), images, rendering)
    return render.migration_task_definition(task_definition)


def network_configuration(outputs):
    return {
        "awsvpcConfiguration": {
            "subnets": outputs["PrivateSubnetIds"].split(","),
            "securityGroups": [outputs["TaskSecurityGroupId"]],
            "assignPublicIp": outputs.get("AssignPublicIp", "DISABLED"),
        }
    }


def describe_stack_command(stack_name):
    return ["cloudformation", "describe-stacks", "--stack-name", stack_name, "--output", "json"]


def register_command(definition_file):
    return ["ecs", "register-task-definition", "--cli-input-json", f"file://{definition_file}", "--output", "json"]


def run_command(cluster, definition_arn, network):
    return [
        "ecs", "run-task", "--cluster", cluster, "--task-definition", definition_arn,
        "--launch-type", "FARGATE", "--count", "1", "--started-by", STARTED_BY,
        "--network-configuration", json.dumps(network, separators=(",", ":")), "--output", "json",
    ]  # fmt: skip


def wait_command(cluster, task_arn):
    return ["ecs", "wait", "tasks-stopped", "--cluster", cluster, "--tasks", task_arn]


def describe_command(cluster, task_arn):
    return ["ecs", "describe-tasks", "--cluster", cluster, "--tasks", task_arn, "--output", "json"]


def verdict(described, task_arn):
    """The migration container's exit code and why the task stopped, from describe-tasks."""
    tasks = described.get("tasks", [])
    if not tasks:
        raise Failed(f"describe-tasks does not know task {task_arn}: {described.get('failures')}")
    task = tasks[0]
    container = next((c for c in task.get("containers", []) if c.get("name") == render.MIGRATION_CONTAINER), {})
    if task.get("lastStatus") != "STOPPED":
        raise Failed(f"the migration task {task_arn} has not stopped (lastStatus {task.get('lastStatus')})")
    return container.get("exitCode"), task.get("stoppedReason") or container.get("reason") or ""


def migrate(stack_name, environ, images_file=None):
    images = pushed_images.pushed_images(environ, images_file)
    stack = deployed_stack(stack_name)
    if stack is None or "ClusterName" not in stack["outputs"]:
        raise Failed(f"the stack {stack_name} has no cluster yet: deploy it first (make ecs-deploy)")
    if not has_database(deployment_parameters(stack, environ)):
        print("ecs-migrate: the deployment has no database (DatabaseHost): nothing to migrate")
        return
    outputs, cluster = stack["outputs"], stack["outputs"]["ClusterName"]
    definition = migration_definition(stack, environ, images)
    with tempfile.TemporaryDirectory(prefix="ecs-migrate-") as folder:
        definition_file = os.path.join(folder, "migration-task-definition.json")
        with open(definition_file, "w", encoding="utf-8") as file:
            json.dump(definition, file)
        registered = json.loads(aws(register_command(definition_file)))["taskDefinition"]["taskDefinitionArn"]
    print(f"ecs-migrate: registered {registered}, image {images['PUSHED_WEB_IMAGE']}")
    started = json.loads(aws(run_command(cluster, registered, network_configuration(outputs))))
    if started.get("failures") or not started.get("tasks"):
        raise Failed(f"run-task started nothing: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    print(f"ecs-migrate: running {task_arn}: alembic upgrade head; waiting for it to stop")
    aws(wait_command(cluster, task_arn), timeout=WAIT_TIMEOUT_S)
    exit_code, reason = verdict(json.loads(aws(describe_command(cluster, task_arn))), task_arn)
    log = f"log group /ecs/{stack_name}, stream {render.MIGRATION_CONTAINER}/{render.MIGRATION_CONTAINER}/"
    log += task_arn.rsplit("/", 1)[-1]
    if exit_code != 0:
        raise Failed(f"the migration exited {exit_code} ({reason or 'no reason given'}); its output: {log}")
    print(f"ecs-migrate: the migrations are applied (exit 0; {log})")


def dry_run(stack_name, environ, images_file=None):
    """The commands a real run sends, in order; values only the stack holds are placeholders."""
    images = pushed_images.pushed_images(environ, images_file)
    network = {
        "awsvpcConfiguration": {
            "subnets": ["<PrivateSubnetIds output>"],
            "securityGroups": ["<TaskSecurityGroupId output>"],
            "assignPublicIp": "<AssignPublicIp output>",
        }
    }
    cluster, task = "<ClusterName output>", "<started task>"
    definition = f"<the migration task, as make ecs-render-migration prints it, of {images['PUSHED_WEB_IMAGE']}>"
    lines = [
        describe_stack_command(stack_name),
        register_command(definition),
        run_command(cluster, "<registered task definition>", network),
        wait_command(cluster, task),
        describe_command(cluster, task),
    ]
    for line in lines:
        print(" ".join(["aws", *line]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", action="store_true", help=f"print one of {', '.join(PLANS)} for make ecs-deploy")
    parser.add_argument("--images-file", help=f"default: {pushed_images.DEFAULT_FILE}")
    args = parser.parse_args(argv)
    stack_name = os.environ.get("ECS_STACK_NAME") or render.DEFAULT_STACK_NAME
    dry = os.environ.get("DRY_RUN") == "1"
    try:
        if args.plan:
            if dry:
                print("ecs-migrate: dry run: assuming the stack already runs with this database", file=sys.stderr)
                parameters = deployment_parameters(None, os.environ)
                print("before" if has_database(parameters) else "none")
            else:
                print(plan(deployed_stack(stack_name), os.environ))
        elif dry:
            dry_run(stack_name, os.environ, args.images_file)
        else:
            migrate(stack_name, os.environ, args.images_file)
    except (Failed, pushed_images.ImagesError, cfn_template.Unresolvable, KeyError, ValueError) as error:
        print(f"ecs-migrate: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
