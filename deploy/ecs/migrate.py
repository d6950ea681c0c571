"""Run the database migrations on ECS as a one-off Fargate task (make ecs-migrate), and
tell make ecs-deploy whether they run before or after its deploy (--plan).

The task is the service's own task definition with web running `alembic upgrade head`
instead of gunicorn, and without nginx (render.migration_task_definition): the pushed web
image, the same execution role, database settings and password file, in the service's
subnets and security group. Registered, run once, waited for until it stops; this exits
non-zero unless the migration container exited 0, so make ecs-deploy stops before rolling
the service and the old release keeps serving.

It reads the stack (aws cloudformation describe-stacks): the cluster, role, subnets and
security group from its outputs, its region and account from its id, and the deployed
parameters, over which ECS_PARAMETERS wins, as `aws cloudformation deploy` will apply them
(it keeps a parameter's previous value unless given a new one). It calls the AWS CLI on PATH.
  ECS_STACK_NAME         the stack (default flask-stack)
  ECS_PARAMETERS         "Key=Value ..." the deploy is about to apply
  PUSHED_IMAGES_FILE     the digests and platforms make push recorded (PUSHED_* in the
                         environment win)
  ECS_MIGRATION_TIMEOUT  seconds the migration may run before it is stopped and counted a
                         failure (default 900)
  DRY_RUN                1: print the AWS CLI commands instead, with the values only the
                         stack knows as <placeholders>

--plan, run by make ecs-deploy before anything else, also refuses a CpuArchitecture the
pushed images were not built for: their tasks would never start.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cfn_template
import pushed_images
import render

# An AWS CLI call that only reads or starts something answers in seconds; one stuck on the
# network must not hold a release for ever.
CALL_TIMEOUT_S = 120
# How long a migration may run: a release waits for it. A longer one (a large backfill) is
# better run apart from the release (docs/database.md, "Expand, then contract").
MIGRATION_TIMEOUT_S = 900
# Between two looks at the task: the AWS CLI's own tasks-stopped waiter looks every 6 s.
POLL_S = 6
STARTED_BY = "make-ecs-migrate"
# What make ecs-deploy does about the migrations, printed by --plan: nothing; migrate, then
# deploy; or deploy the database's settings with the images already deployed (so the role
# may read the password), then migrate, then deploy the new images.
PLANS = ("none", "before", "grant-first")
# What the deploy's execution role must already allow for a migration to run before it.
ROLE_PARAMETERS = ("DatabaseHost", "DatabasePasswordSecretArn", "DatabasePasswordKmsKeyArn")
# The template's CpuArchitecture values, as image platforms.
PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


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
    # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
    _, _, _, region, account, _ = stack["StackId"].split(":", 5)
    return {
        "parameters": {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])},
        "outputs": {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
        "region": region,
        "account": account,
    }


def deployment_parameters(stack, environ):
    """The parameters the deploy will apply: the stack's, with ECS_PARAMETERS over them."""
    parameters = dict(stack["parameters"]) if stack else {}
    parameters.update(render.given_parameters(environ))
    return parameters


def pushed_platforms(environ, images_file=None):
    """The platforms make push recorded (PUSHED_PLATFORMS, comma-separated), or None."""
    path = images_file or environ.get("PUSHED_IMAGES_FILE") or pushed_images.DEFAULT_FILE
    recorded = environ.get("PUSHED_PLATFORMS")
    if not recorded and os.path.isfile(path):
        recorded = pushed_images.read_env_file(path).get("PUSHED_PLATFORMS")
    return recorded.split(",") if recorded else None


def has_database(parameters):
    return bool(parameters.get("DatabaseHost") and parameters.get("DatabasePasswordSecretArn"))


def plan(stack, environ):
    """none: the deployment has no database. before: the stack already runs with this database
    (its cluster exists and its execution role may read this password with this key), so the
    migrations run before the service rolls. grant-first: the database is new to the stack (or
    the stack is), so its settings are deployed first, with the images already running."""
    parameters = deployment_parameters(stack, environ)
    if not has_database(parameters):
        return "none"
    granted = stack is not None and all(
        stack["parameters"].get(key, "") == parameters.get(key, "") for key in ROLE_PARAMETERS
    )
    return "before" if granted and "ClusterName" in stack["outputs"] else "grant-first"


def check_architecture(parameters, platforms):
    """The tasks' CPU must be one the pushed images were built for (`platforms`, what make push
    recorded), or no task would start. With no record, only the default CPU is let through."""
    template = cfn_template.load(render.TEMPLATE)
    architecture = parameters.get("CpuArchitecture") or template["Parameters"]["CpuArchitecture"]["Default"]
    wanted = PLATFORMS[architecture]
    if platforms is None:
        if architecture != template["Parameters"]["CpuArchitecture"]["Default"]:
            raise Failed(f"CpuArchitecture {architecture}: make push recorded no PUSHED_PLATFORMS; push again")
        return
    if wanted not in platforms:
        raise Failed(
            f"CpuArchitecture {architecture} needs images for {wanted}; make push built {', '.join(platforms)}"
        )


def migration_definition(stack, environ, images):
    """The migration's task definition, rendered with the deployment's parameters, role, region
    and account."""
    template = cfn_template.load(render.TEMPLATE)
    declared = template.get("Parameters", {})
    parameters = {
        key: value
        for key, value in deployment_parameters(stack, environ).items()
        if key in declared and key not in ("WebImage", "NginxImage") and value != ""
    }
    rendering = {
        **environ,
        "AWS_REGION": stack["region"],
        "AWS_ACCOUNT_ID": stack["account"],
        "ECS_EXECUTION_ROLE_ARN": stack["outputs"]["ExecutionRoleArn"],
    }
    task_definition, _ = render.render(template, images, rendering, given=parameters)
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


def describe_command(cluster, task_arn):
    return ["ecs", "describe-tasks", "--cluster", cluster, "--tasks", task_arn, "--output", "json"]


def stop_command(cluster, task_arn, reason):
    return ["ecs", "stop-task", "--cluster", cluster, "--task", task_arn, "--reason", reason, "--output", "json"]


def stopped_task(cluster, task_arn, timeout):
    """describe-tasks' answer once the task has stopped, looking every POLL_S seconds. Past
    `timeout` the task is stopped (a release must not leave a migration running unseen) and
    that is a failure naming it."""
    deadline = time.monotonic() + timeout
    while True:
        described = json.loads(aws(describe_command(cluster, task_arn)))
        tasks = described.get("tasks", [])
        if not tasks or tasks[0].get("lastStatus") == "STOPPED":
            return described
        if time.monotonic() + POLL_S > deadline:
            aws(stop_command(cluster, task_arn, f"{STARTED_BY}: not done within {timeout} s"))
            raise Failed(f"the migration task {task_arn} ran past {timeout} s (ECS_MIGRATION_TIMEOUT): stopped it")
        time.sleep(POLL_S)


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
    timeout = int(environ.get("ECS_MIGRATION_TIMEOUT") or MIGRATION_TIMEOUT_S)
    exit_code, reason = verdict(stopped_task(cluster, task_arn, timeout), task_arn)
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
        # Every POLL_S seconds until the task has stopped, then its containers' exit codes.
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
            stack = None if dry else deployed_stack(stack_name)
            check_architecture(deployment_parameters(stack, os.environ), pushed_platforms(os.environ, args.images_file))
            if dry:
                print("ecs-migrate: dry run: assuming the stack already runs with this database", file=sys.stderr)
                print("before" if has_database(deployment_parameters(None, os.environ)) else "none")
            else:
                print(plan(stack, os.environ))
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
