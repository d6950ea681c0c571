import json

import pytest
import validate
from ecs_examples import database_environ


def test_the_real_template_passes_cfn_lint():
    assert validate.cfn_lint_messages(validate.render.TEMPLATE) == []


def test_the_rendered_task_definition_passes_botocores_ecs_model(real_task_definition):
    assert validate.botocore_messages(real_task_definition) == []


@pytest.mark.parametrize("rule", validate.all_rules(), ids=lambda rule: rule.__name__)
def test_the_real_deployment_passes_our_rule(rule, real_template, real_task_definition):
    assert rule(real_template, real_task_definition) == []


def test_the_deployment_with_a_database_passes_botocore_and_every_rule(database_deployment):
    template, task_definition = database_deployment
    assert validate.botocore_messages(task_definition) == []
    assert validate.rule_messages(template, task_definition) == []


def test_make_ecs_validate_judges_the_deployment_its_parameters_describe(capsys, images_file, monkeypatch):
    monkeypatch.setenv("ECS_PARAMETERS", database_environ()["ECS_PARAMETERS"])
    assert validate.main(["--images-file", str(images_file)]) == 0
    assert capsys.readouterr().out.strip() == "ok"


def test_botocore_catches_a_field_of_the_wrong_type(task_definition):
    task_definition["containerDefinitions"][0]["stopTimeout"] = "35"

    messages = validate.botocore_messages(task_definition)

    assert any("containerDefinitions[0].stopTimeout" in message and "type" in message for message in messages)


def test_cfn_lint_catches_an_invalid_enum_in_a_broken_copy(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(validate.render.TEMPLATE.read_text().replace("LaunchType: FARGATE", "LaunchType: FARGATE_SPOT"))

    messages = validate.cfn_lint_messages(broken)

    assert any("E3030" in message and "FARGATE_SPOT" in message for message in messages), messages


def test_a_broken_task_definition_file_fails_validation_naming_the_field(capsys, tmp_path, task_definition):
    task_definition["containerDefinitions"][0]["healthCheck"]["interval"] = 3
    path = tmp_path / "task-definition.json"
    path.write_text(json.dumps(task_definition))

    assert validate.main(["--task-definition", str(path)]) == 1

    assert "containerDefinitions[web].healthCheck.interval: 3 is outside 5-300" in capsys.readouterr().out


def test_without_pushed_images_validation_uses_labelled_example_digests(capsys, images, tmp_path, monkeypatch):
    for key in images:
        monkeypatch.delenv(key, raising=False)

    validate.main(["--images-file", str(tmp_path / "absent.env")])

    err = capsys.readouterr().err
    assert "run `make push` first" in err and "EXAMPLE image digests" in err


def test_cfn_lint_catches_an_iam_action_that_does_not_exist(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(validate.render.TEMPLATE.read_text().replace("- ecr:PutImage\n", "- ecr:PutImages\n", 1))

    messages = validate.cfn_lint_messages(broken)

    assert any("W3037" in message and "putimages" in message for message in messages), messages


def test_the_push_policy_grants_awss_documented_push_actions_on_the_two_repositories_only(real_template):
    (statement_login, statement_push) = real_template["Resources"]["PushPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
    assert statement_login["Action"] == "ecr:GetAuthorizationToken" and statement_login["Resource"] == "*"
    assert set(statement_push["Action"]) == {
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        # imagetools create reads each CPU's config blob to write the manifest list.
        "ecr:GetDownloadUrlForLayer",
    }
    assert statement_push["Resource"] == [
        {"Fn::GetAtt": ["WebRepository", "Arn"]},
        {"Fn::GetAtt": ["NginxRepository", "Arn"]},
    ]
