import json

import pytest
import render
from ecs_examples import DATABASE_PARAMETERS


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


def test_without_a_database_the_task_has_no_password_container_nor_volume(real_task_definition):
    names = [container["name"] for container in real_task_definition["containerDefinitions"]]
    assert names == ["web", "nginx"]
    assert "db-password" not in [volume["name"] for volume in real_task_definition["volumes"]]
    (web, _) = real_task_definition["containerDefinitions"]
    assert "dependsOn" not in web and not any(pair["name"].startswith("APP_DB_") for pair in web["environment"])


def test_gunicorn_listens_on_the_tasks_loopback_and_web_maps_no_port(real_task_definition):
    (web, nginx) = real_task_definition["containerDefinitions"]
    assert {"name": "GUNICORN_HOST", "value": "127.0.0.1"} in web["environment"]
    assert "portMappings" not in web
    assert {"name": "WEB_UPSTREAM", "value": "127.0.0.1:8000"} in nginx["environment"]


def test_with_a_database_the_password_is_a_file_web_reads_never_its_environment(database_deployment):
    _, task_definition = database_deployment
    writer, web, _ = task_definition["containerDefinitions"]
    arn = DATABASE_PARAMETERS["DatabasePasswordSecretArn"]
    # The one-shot container takes the secret (the JSON key RDS's own secret keeps it under)...
    assert writer["name"] == "db-password" and writer["essential"] is False
    assert writer["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": f"{arn}:password::"}]
    # (/tmp in a container of the task's own, which the image declares a VOLUME.)
    assert writer["mountPoints"] == [{"sourceVolume": "db-password", "containerPath": "/tmp", "readOnly": False}]  # noqa: S108
    # ...and web reads the file it wrote, once it has, at APP_DB_PASSWORD_FILE's default path.
    assert "secrets" not in web
    assert {"sourceVolume": "db-password", "containerPath": "/run/secrets", "readOnly": True} in web["mountPoints"]
    assert web["dependsOn"] == [{"containerName": "db-password", "condition": "SUCCESS"}]
    assert {"name": "APP_DB_HOST", "value": DATABASE_PARAMETERS["DatabaseHost"]} in web["environment"]
    # The port, name and user were not given: the web image's defaults apply, not restated.
    assert not {"APP_DB_PORT", "APP_DB_NAME", "APP_DB_USER"} & {pair["name"] for pair in web["environment"]}
    assert {"name": "db-password"} in task_definition["volumes"]


def test_a_database_host_without_its_password_is_refused_by_the_templates_rule(capsys, images_file, monkeypatch):
    monkeypatch.setenv("ECS_PARAMETERS", f"DatabaseHost={DATABASE_PARAMETERS['DatabaseHost']}")

    assert render.main(["--images-file", str(images_file)]) == 1

    assert "rule DatabaseNeedsItsPassword: DatabaseHost needs DatabasePasswordSecretArn" in capsys.readouterr().err


@pytest.mark.parametrize(
    "pair, expected",
    [
        ("CpuArchitecture=ARM", "parameter CpuArchitecture: 'ARM' is not one of X86_64, ARM64"),
        ("DatabasePasswordSecretArn=hunter2", "parameter DatabasePasswordSecretArn: 'hunter2' does not match"),
        # A JSON key of an SSM parameter: only Secrets Manager secrets have keys.
        (
            "DatabaseHost=db.internal DatabasePasswordSecretArn=arn:aws:ssm:eu-west-1:123456789012:parameter/db "
            "DatabasePasswordJsonKey=password",
            "parameter DatabasePasswordJsonKey: 'password' picks a key of a Secrets Manager secret's JSON",
        ),
        ("DatabasePasswordSecretArn=arn:aws:ssm:eu-west-1:123456789012:parameter/db", "need DatabaseHost"),
        (
            "DatabaseHost=db.internal DatabasePasswordSecretArn=arn:aws:ssm:eu-west-1:123456789012:parameter/db "
            "DatabasePort=0",
            "parameter DatabasePort: '0' does not match",
        ),
        # A Secrets Manager ARN without its six random characters names no secret.
        (
            "DatabasePasswordSecretArn=arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
            "parameter DatabasePasswordSecretArn:",
        ),
    ],
)
def test_a_value_the_parameter_does_not_allow_is_refused_before_deploying(
    capsys, images_file, monkeypatch, pair, expected
):
    monkeypatch.setenv("ECS_PARAMETERS", pair)

    assert render.main(["--images-file", str(images_file)]) == 1

    assert expected in capsys.readouterr().err


def test_the_cpu_architecture_is_a_parameter(capsys, images_file, monkeypatch):
    monkeypatch.setenv("ECS_PARAMETERS", "CpuArchitecture=ARM64")

    assert render.main(["--images-file", str(images_file)]) == 0

    platform = json.loads(capsys.readouterr().out)["runtimePlatform"]
    assert platform == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}


def test_an_ssm_parameter_is_read_whole_and_the_port_name_and_user_pass_through(capsys, images_file, monkeypatch):
    parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/db-password"
    monkeypatch.setenv(
        "ECS_PARAMETERS",
        f"DatabaseHost=db.internal DatabasePort=6432 DatabaseName=shop DatabaseUser=shop "
        f"DatabasePasswordSecretArn={parameter}",
    )

    assert render.main(["--images-file", str(images_file)]) == 0

    writer, web, _ = json.loads(capsys.readouterr().out)["containerDefinitions"]
    assert writer["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": parameter}]
    assert {pair["name"]: pair["value"] for pair in web["environment"] if pair["name"].startswith("APP_DB_")} == {
        "APP_DB_HOST": "db.internal",
        "APP_DB_PORT": "6432",
        "APP_DB_NAME": "shop",
        "APP_DB_USER": "shop",
    }
