"""Print the task definition the template describes, as JSON for
`aws ecs register-task-definition --cli-input-json file://...` (make ecs-render).

One source of truth: the template's AWS::ECS::TaskDefinition, with its parameters'
defaults, the pushed image digests, and values a deployed stack would supply taken from
the environment:
  AWS_REGION / AWS_DEFAULT_REGION   awslogs-region (default eu-west-1, an example region)
  ECS_STACK_NAME                    family and log group /ecs/<stack> (default flask-stack)
  ECS_EXECUTION_ROLE_ARN            the stack's ExecutionRoleArn output; without it an
                                    example ARN in AWS_ACCOUNT_ID (default 123456789012,
                                    AWS's documentation account) is used, and said so
  ECS_PARAMETERS                    the "Key=Value ..." parameter overrides `make ecs-deploy`
                                    passes; VpcCidr, which has no default, is an example
                                    (10.0.0.0/16) when not given, and said so
"""

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

import api_names
import cfn_template
import pushed_images

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
DEFAULT_REGION = "eu-west-1"
DEFAULT_STACK_NAME = "flask-stack"
EXAMPLE_ACCOUNT_ID = "123456789012"
# Parameters the task definition reads that have no default in the template.
EXAMPLE_PARAMETERS = {"VpcCidr": "10.0.0.0/16"}


def task_definition_resource(template):
    found = cfn_template.resources_of_type(template, "AWS::ECS::TaskDefinition")
    if len(found) != 1:
        raise ValueError(f"expected one AWS::ECS::TaskDefinition in the template, found {len(found)}")
    return found[0][1]


def deployment_values(environ):
    """The pseudo parameters and stack outputs a rendered definition needs, and notes on
    any that are examples rather than the real thing."""
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    stack = environ.get("ECS_STACK_NAME") or DEFAULT_STACK_NAME
    account = environ.get("AWS_ACCOUNT_ID") or EXAMPLE_ACCOUNT_ID
    notes = []
    role = environ.get("ECS_EXECUTION_ROLE_ARN")
    if not role:
        role = f"arn:aws:iam::{account}:role/{stack}-ExecutionRole-EXAMPLE"
        notes.append(
            f"executionRoleArn is an example ({role}): set ECS_EXECUTION_ROLE_ARN to the "
            "stack's ExecutionRoleArn output before registering this definition"
        )
    pseudo = {"AWS::Region": region, "AWS::StackName": stack, "AWS::AccountId": account, "AWS::Partition": "aws"}
    return pseudo, {"ExecutionRole.Arn": role}, notes


def given_parameters(environ, declared=None):
    """ECS_PARAMETERS ("Key=Value Key=Value") as a dict. A key the template does not declare
    is refused: a misspelt one would leave a default or an example in place."""
    given = {}
    for pair in environ.get("ECS_PARAMETERS", "").split():
        key, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"ECS_PARAMETERS: expected Key=Value, got {pair!r}")
        if declared is not None and key not in declared:
            raise ValueError(
                f"ECS_PARAMETERS: the template has no parameter {key!r} (it has {', '.join(sorted(declared))})"
            )
        given[key] = value
    return given


def parameter_overrides(environ, declared=None, given=None):
    """ECS_PARAMETERS (or `given`, the same as a dict) with examples for what a task
    definition needs and was not given, and notes saying which."""
    if given is None:
        overrides = given_parameters(environ, declared)
    else:
        overrides = dict(given)
        unknown = set(overrides) - set(declared or overrides)
        if unknown:
            raise ValueError(f"the template has no parameter {', '.join(sorted(unknown))}")
    notes = []
    for key, example in EXAMPLE_PARAMETERS.items():
        if key not in overrides:
            overrides[key] = example
            notes.append(f"{key} is an example ({example}): pass it in ECS_PARAMETERS")
    return overrides, notes


def check_parameter(name, declared, value):
    """What CloudFormation checks of a String or Number parameter's value before deploying:
    its AllowedValues and AllowedPattern (a pattern must match the whole value)."""
    allowed = declared.get("AllowedValues")
    if allowed is not None and str(value) not in [str(choice) for choice in allowed]:
        raise ValueError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, allowed))}")
    pattern = declared.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, str(value)):
        raise ValueError(f"parameter {name}: {value!r} does not match {pattern}")


def check_template_rules(template, resolver):
    """The template's own Rules section, as CloudFormation checks it before creating anything:
    each assertion of a rule whose condition holds must hold, or its description is the error."""
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.truth(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver.truth(assertion["Assert"]):
                raise ValueError(f"rule {name}: {assertion.get('AssertDescription', 'an assertion failed')}")


def check_secret_reference(parameters):
    """A JSON key picks a key of a Secrets Manager secret (<ARN>:<key>::); an SSM parameter
    has no such form, and ECS would refuse the reference when a task starts."""
    arn, key = parameters.get("DatabasePasswordSecretArn", ""), parameters.get("DatabasePasswordJsonKey", "")
    if key and ":secretsmanager:" not in arn:
        raise ValueError(
            f"parameter DatabasePasswordJsonKey: {key!r} picks a key of a Secrets Manager secret's JSON; "
            f"{arn or 'no secret'} is not one (an SSM parameter holds the password whole)"
        )


def deployed(template, images, environ, given=None):
    """(the template with this deployment's parameter values as its defaults, notes): what
    the rules judge, so a condition such as HasDatabase holds as it will in the stack.
    `given` replaces ECS_PARAMETERS with a dict of the same."""
    declared = set(template.get("Parameters", {}))
    parameters, notes = parameter_overrides(environ, declared=declared, given=given)
    parameters.update(WebImage=images["PUSHED_WEB_IMAGE"], NginxImage=images["PUSHED_NGINX_IMAGE"])
    deployment = copy.deepcopy(template)
    for name, value in parameters.items():
        check_parameter(name, deployment["Parameters"][name], value)
        deployment["Parameters"][name]["Default"] = value
    check_template_rules(deployment, cfn_template.Resolver(deployment))
    check_secret_reference(parameters)
    return deployment, notes


def render(template, images, environ, given=None):
    """(task definition in the API's names, notes) for these images and this environment;
    `given` replaces ECS_PARAMETERS with a dict of the same."""
    pseudo, known, notes = deployment_values(environ)
    deployment, parameter_notes = deployed(template, images, environ, given)
    notes += parameter_notes
    resolver = cfn_template.Resolver(deployment, pseudo=pseudo, known=known)
    properties = resolver.resolve(task_definition_resource(deployment))
    return api_names.to_api(properties, api_names.register_task_definition_shape()), notes


# The migrations, as scripts/migrate.sh runs them under Compose: Alembic in the web image.
MIGRATION_COMMAND = ["alembic", "upgrade", "head"]
MIGRATION_CONTAINER = "migrate"


def migration_task_definition(task_definition):
    """The one-off task `make ecs-migrate` runs: the service's own task definition (same
    image, role, database settings and password file), with web running the migrations
    instead of gunicorn and without nginx. Its family is the service's plus -migrate."""
    migration = json.loads(json.dumps(task_definition))
    migration["family"] = f"{task_definition['family']}-migrate"
    containers = []
    for container in migration["containerDefinitions"]:
        if container["name"] == "nginx":
            continue
        if container["name"] == "web":
            container["name"] = MIGRATION_CONTAINER
            container["command"] = list(MIGRATION_COMMAND)
            # It ends when the migrations do: its exit code is the verdict, not a check.
            container.pop("healthCheck", None)
            container["logConfiguration"]["options"]["awslogs-stream-prefix"] = MIGRATION_CONTAINER
        containers.append(container)
    migration["containerDefinitions"] = containers
    return migration


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=TEMPLATE, type=Path)
    parser.add_argument("--images-file", type=Path, help=f"default: {pushed_images.DEFAULT_FILE}")
    parser.add_argument("--migration", action="store_true", help="the one-off migration task's definition instead")
    args = parser.parse_args(argv)
    try:
        images = pushed_images.pushed_images(os.environ, args.images_file)
        task_definition, notes = render(cfn_template.load(args.template), images, os.environ)
        if args.migration:
            task_definition = migration_task_definition(task_definition)
    except (pushed_images.ImagesError, cfn_template.Unresolvable, KeyError, ValueError) as error:
        print(f"ecs-render: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"ecs-render: note: {note}", file=sys.stderr)
    print(json.dumps(task_definition, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
