import json

import pytest
import render


def test_the_template_renders_a_task_definition_in_the_api_names(capsys, images, images_file, monkeypatch):
    for key in images:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ECS_STACK_NAME", "shop")
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    monkeypatch.setenv("ECS_EXECUTION_ROLE_ARN", "arn:aws:iam::111122223333:role/shop-ExecutionRole-1")
    monkeypatch.setenv("ECS_PARAMETERS", "VpcCidr=10.20.0.0/16 TaskCpu=2048 TaskMemory=4096")

    assert render.main(["--images-file", str(images_file)]) == 0

    rendered = json.loads(capsys.readouterr().out)
    assert rendered["family"] == "shop"
    assert (rendered["cpu"], rendered["memory"]) == ("2048", "4096")
    assert rendered["executionRoleArn"] == "arn:aws:iam::111122223333:role/shop-ExecutionRole-1"
    web, nginx = rendered["containerDefinitions"]
    assert web["image"] == images["PUSHED_WEB_IMAGE"] and nginx["image"] == images["PUSHED_NGINX_IMAGE"]
    # Map keys are data: the awslogs option names keep their spelling.
    assert web["logConfiguration"]["options"] == {
        "awslogs-group": "/ecs/shop",
        "awslogs-region": "us-east-2",
        "awslogs-stream-prefix": "web",
    }
    assert {"name": "NGINX_REAL_IP_FROM", "value": "10.20.0.0/16"} in nginx["environment"]
    assert nginx["dependsOn"] == [{"containerName": "web", "condition": "HEALTHY"}]


def test_the_output_is_the_same_every_time(capsys, images_file):
    render.main(["--images-file", str(images_file)])
    first = capsys.readouterr().out
    render.main(["--images-file", str(images_file)])
    assert capsys.readouterr().out == first


def test_example_values_are_said_to_be_examples(capsys, images_file, monkeypatch):
    monkeypatch.delenv("ECS_EXECUTION_ROLE_ARN", raising=False)
    monkeypatch.delenv("ECS_PARAMETERS", raising=False)
    render.main(["--images-file", str(images_file)])
    err = capsys.readouterr().err
    assert "executionRoleArn is an example" in err and "123456789012" in err
    assert "VpcCidr is an example" in err


def test_a_tag_only_image_is_refused(capsys, images_file, monkeypatch):
    monkeypatch.setenv("PUSHED_WEB_IMAGE", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flask-stack/web:v1")

    assert render.main(["--images-file", str(images_file)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "PUSHED_WEB_IMAGE=" in captured.err and "is not pinned by digest" in captured.err


def test_missing_images_say_to_run_make_push(capsys, images, tmp_path, monkeypatch):
    for key in images:
        monkeypatch.delenv(key, raising=False)

    assert render.main(["--images-file", str(tmp_path / "absent.env")]) == 1

    err = capsys.readouterr().err
    assert "run `make push` first" in err and "PUSHED_WEB_IMAGE" in err


def test_environment_variables_win_over_the_images_file(capsys, images_file, monkeypatch):
    other = "registry.example/flask-stack/nginx@sha256:" + "c" * 64
    monkeypatch.setenv("PUSHED_NGINX_IMAGE", other)
    render.main(["--images-file", str(images_file)])
    assert json.loads(capsys.readouterr().out)["containerDefinitions"][1]["image"] == other


@pytest.mark.parametrize("line", ["PUSHED_WEB_IMAGE", "just some words"])
def test_a_malformed_images_file_is_refused_with_its_line(capsys, images, tmp_path, line, monkeypatch):
    for key in images:
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "pushed-images.env"
    path.write_text(f"{line}\n")
    assert render.main(["--images-file", str(path)]) == 1
    assert f"{path}:1: expected KEY=VALUE" in capsys.readouterr().err


def test_a_parameter_the_template_does_not_declare_is_refused(capsys, images_file, monkeypatch):
    monkeypatch.setenv("ECS_PARAMETERS", "VpcCIDR=10.1.0.0/16")

    assert render.main(["--images-file", str(images_file)]) == 1

    assert "the template has no parameter 'VpcCIDR'" in capsys.readouterr().err
