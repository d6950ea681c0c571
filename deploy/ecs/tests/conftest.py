"""The deploy/ecs scripts import each other as top-level modules (they run as
`python deploy/ecs/render.py`); put their folder on the path for the tests too."""

import copy
import json
import sys
from pathlib import Path

import pytest

ECS_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ECS_DIR))
# And this folder, for the example deployments the tests share.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cfn_template  # noqa: E402
import render  # noqa: E402
from ecs_examples import IMAGES, with_database  # noqa: E402

TEMPLATE = ECS_DIR / "template.yaml"


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


@pytest.fixture
def database_deployment(real_template):
    """(deployed template, task definition) of the deployment with the database."""
    template, task_definition = copy.deepcopy(real_template), {}
    with_database(template, task_definition)
    return template, task_definition
