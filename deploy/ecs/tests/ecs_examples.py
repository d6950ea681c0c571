"""Example deployments the tests share: pushed images and a database, as a user passes them."""

import json

import render

from ecs_stand_in import EXAMPLE_DATABASE

# Example digests, as a user's pushed-images.env would hold real ones.
IMAGES = {
    "PUSHED_WEB_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-stack/web@sha256:" + "a" * 64,
    "PUSHED_NGINX_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-stack/nginx@sha256:" + "b" * 64,
}


# The database the stand-in's examples deploy (tests/ecs_stand_in.py).
DATABASE_PARAMETERS = EXAMPLE_DATABASE


def database_environ():
    """The environment `make ecs-render` and `make ecs-validate` see with the database above."""
    return {"ECS_PARAMETERS": " ".join(f"{key}={value}" for key, value in DATABASE_PARAMETERS.items())}


def with_database(template, task_definition):
    """Turn a copy of the deployment into one with the database: the template's parameters
    as deployed, the task definition rendered again from it, both in place."""
    deployment, _ = render.deployed(template, IMAGES, database_environ())
    template.clear()
    template.update(deployment)
    rendered, _ = render.render(template, IMAGES, {})
    task_definition.clear()
    task_definition.update(json.loads(json.dumps(rendered)))
