"""Validate the deployment offline (make ecs-validate): cfn-lint on the template, botocore's
ECS model on the rendered task definition and on the migration task derived from it, then
every rule in rules.py. Prints `ok`, or one line per problem and exits 1.

Without pushed images (a fresh clone) the task definition is rendered with example
digests, said so on stderr: `make push` first to check the real ones.
"""

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

import botocore.session
import botocore.validate
import cfn_template
import cfnlint.api
import pushed_images
import render
import rules

EXAMPLE_IMAGES = {
    "PUSHED_WEB_IMAGE": "example.invalid/flask-stack/web@sha256:" + "0" * 64,
    "PUSHED_NGINX_IMAGE": "example.invalid/flask-stack/nginx@sha256:" + "0" * 64,
}


def cfn_lint_messages(template_path):
    """cfn-lint's errors and warnings (its informational matches are not failures)."""
    return [
        f"cfn-lint {match.rule.id} {template_path}:{match.linenumber}: {match.message}"
        for match in cfnlint.api.lint_file(Path(template_path))
        if not match.rule.id.startswith("I")
    ]


def botocore_messages(task_definition):
    """What botocore would refuse before sending RegisterTaskDefinition: types, required
    members, enums and lengths of the ECS API model."""
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = botocore.validate.ParamValidator().validate(task_definition, shape)
    return (
        [f"botocore: {line}" for line in report.generate_report().splitlines() if line.strip()]
        if report.has_errors()
        else []
    )


def all_rules():
    return [function for name, function in inspect.getmembers(rules, inspect.isfunction) if name.startswith("rule_")]


def rule_messages(template, task_definition):
    return [message for rule in all_rules() for message in rule(template, task_definition)]


def validate(template_path, deployment, task_definition):
    """Every problem cfn-lint, botocore and our rules find; the rules judge `deployment`, the
    template with this deployment's parameters (render.deployed)."""
    return (
        cfn_lint_messages(template_path)
        + botocore_messages(task_definition)
        + rule_messages(deployment, task_definition)
    )


def images_or_examples(images_file, environ):
    try:
        return pushed_images.pushed_images(environ, images_file)
    except pushed_images.ImagesError as error:
        if "not pinned" in str(error):
            raise
        print(f"ecs-validate: note: {error}", file=sys.stderr)
        print("ecs-validate: note: validating with EXAMPLE image digests (example.invalid/...)", file=sys.stderr)
        return EXAMPLE_IMAGES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=render.TEMPLATE, type=Path)
    parser.add_argument(
        "--task-definition", type=Path, help="a task definition JSON file to check instead of rendering the template's"
    )
    parser.add_argument("--images-file", type=Path, help=f"default: {pushed_images.DEFAULT_FILE}")
    args = parser.parse_args(argv)
    try:
        template = cfn_template.load(args.template)
        images = images_or_examples(args.images_file, os.environ)
        deployment, _ = render.deployed(template, images, os.environ)
        if args.task_definition:
            task_definition = json.loads(args.task_definition.read_text(encoding="utf-8"))
        else:
            task_definition, _ = render.render(template, images, os.environ)
        messages = validate(args.template, deployment, task_definition)
        # The one-off migration task make ecs-migrate registers, derived from the service's.
        migration = render.migration_task_definition(task_definition)
        messages += [f"migration task: {message}" for message in botocore_messages(migration)]
    except (pushed_images.ImagesError, cfn_template.Unresolvable, KeyError, ValueError, OSError) as error:
        print(f"ecs-validate: {error}", file=sys.stderr)
        return 1
    print("\n".join(messages) if messages else "ok")
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main())
