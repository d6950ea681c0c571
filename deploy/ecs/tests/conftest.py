"""The deploy/ecs scripts import each other as top-level modules (they run as
`python deploy/ecs/render.py`); put their folder on the path for the tests too."""

import copy
import json
import sys
from pathlib import Path

import pytest

ECS_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ECS_DIR))

import cfn_template  # noqa: E402
import render  # noqa: E402

TEMPLATE = ECS_DIR / "template.yaml"
# Example digests, as a user's pushed-images.env would hold real ones.
IMAGES = {
    "PUSHED_WEB_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-stack/web@sha256:" + "a" * 64,
    "PUSHED_NGINX_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-stack/nginx@sha256:" + "b" * 64,
}


@pytest.fixture(scope="session")
def images():
    return dict(IMAGES)


@pytest.fixture(scope="session")
def real_template():
    return cfn_template.load(TEMPLATE)


@pytest.fixture(scope="session")
def real_task_definition(real_template):
    task_definition, _ = render.render(real_template, IMAGES, {})
    return task_definition


@pytest.fixture
def template(real_template):
    """A copy of the real template a test may break."""
    return copy.deepcopy(real_template)


@pytest.fixture
def task_definition(real_task_definition):
    """A copy of the rendered task definition a test may break."""
    return json.loads(json.dumps(real_task_definition))


@pytest.fixture
def images_file(tmp_path):
    path = tmp_path / "pushed-images.env"
    path.write_text("# written by make push\n" + "".join(f"{key}={value}\n" for key, value in IMAGES.items()))
    return path
