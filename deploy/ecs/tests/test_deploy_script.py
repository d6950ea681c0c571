import os
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy.sh"


def run_deploy(images_file, **environment):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUSHED_", "ECS_"))}
    # The tools' Python: this one has their libraries (make ecs-deploy passes .venv-deploy's).
    env.update(DRY_RUN="1", PUSHED_IMAGES_FILE=str(images_file), ECS_PYTHON=sys.executable, **environment)
    return subprocess.run([str(DEPLOY)], env=env, capture_output=True, text=True, check=False, timeout=120)


def test_the_dry_run_prints_the_deploy_command_with_both_digests(images, images_file):
    result = run_deploy(
        images_file,
        ECS_STACK_NAME="shop",
        ECS_PARAMETERS="CertificateArn=arn:aws:acm:eu-west-1:123456789012:certificate/abc "
        "VpcId=vpc-0123 VpcCidr=10.0.0.0/16",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "aws cloudformation deploy --template-file deploy/ecs/template.yaml --stack-name shop"
        " --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides"
        f" WebImage={images['PUSHED_WEB_IMAGE']} NginxImage={images['PUSHED_NGINX_IMAGE']}"
        " CertificateArn=arn:aws:acm:eu-west-1:123456789012:certificate/abc VpcId=vpc-0123 VpcCidr=10.0.0.0/16\n"
    )


def test_the_first_deploy_creates_only_the_repositories(tmp_path):
    result = run_deploy(tmp_path / "absent.env", ECS_REPOSITORIES_ONLY="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("--parameter-overrides WebImage= NginxImage=\n")
    assert "--stack-name flask-stack" in result.stdout


def test_without_pushed_images_it_says_to_run_make_push(tmp_path):
    result = run_deploy(tmp_path / "absent.env")

    assert result.returncode == 1 and result.stdout == ""
    assert "run `make push` first" in result.stderr


@pytest.mark.parametrize("image", ["registry.example/flask-stack/web:v1", "registry.example/web@sha256:abc"])
def test_an_image_not_pinned_by_digest_is_refused(images_file, image):
    result = run_deploy(images_file, PUSHED_WEB_IMAGE=image)

    assert result.returncode == 1 and result.stdout == ""
    assert f"{image} is not pinned by digest" in result.stderr


def test_make_ecs_deploy_dry_run_prints_the_same_command(images, images_file):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUSHED_", "ECS_", "MAKE"))}
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "--silent",
            "ecs-deploy",
            "DRY_RUN=1",
            f"PUSHED_IMAGES_FILE={images_file}",
            "ECS_PARAMETERS=VpcId=vpc-0123 VpcCidr=10.0.0.0/16",
        ],
        cwd=DEPLOY.parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "aws cloudformation deploy --template-file deploy/ecs/template.yaml --stack-name flask-stack"
        " --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides"
        f" WebImage={images['PUSHED_WEB_IMAGE']} NginxImage={images['PUSHED_NGINX_IMAGE']}"
        " VpcId=vpc-0123 VpcCidr=10.0.0.0/16\n"
    )
