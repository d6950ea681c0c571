"""Every own rule rejects a copy of the real deployment with one field broken, naming
that field. A rule without a broken case below fails test_every_rule_has_a_broken_case."""

import nginx_config
import pytest
import rules
import validate
from ecs_examples import DATABASE_PARAMETERS, with_database


def container(task_definition, name):
    return next(c for c in task_definition["containerDefinitions"] if c["name"] == name)


def environment(task_definition, name, key, value):
    pairs = container(task_definition, name).setdefault("environment", [])
    pairs[:] = [pair for pair in pairs if pair["name"] != key]
    if value is not None:
        pairs.append({"name": key, "value": value})


def resource(template, name):
    return template["Resources"][name]["Properties"]


def template_container(template, name):
    """A container of the template's task definition, as written."""
    containers = resource(template, "TaskDefinition")["ContainerDefinitions"]
    return next(c for c in containers if c.get("Name") == name)


def attribute(properties, key, value, attributes="TargetGroupAttributes"):
    properties[attributes] = [{"Key": key, "Value": value}]


WEB_STOP = "containerDefinitions[web].stopTimeout:"
MUST_EXCEED = "must exceed GUNICORN_DRAIN_SECONDS + GUNICORN_GRACEFUL_TIMEOUT"

# rule name -> [(case id, break(template, task_definition), text the message must contain)]
BROKEN_CASES = {
    "rule_health_check_ranges": [
        (
            "interval below 5",
            lambda t, d: container(d, "web")["healthCheck"].update(interval=3),
            "containerDefinitions[web].healthCheck.interval: 3 is outside 5-300",
        ),
        (
            "timeout above 60",
            lambda t, d: container(d, "nginx")["healthCheck"].update(timeout=61),
            "containerDefinitions[nginx].healthCheck.timeout: 61 is outside 2-60",
        ),
        (
            "retries 0",
            lambda t, d: container(d, "web")["healthCheck"].update(retries=0),
            "containerDefinitions[web].healthCheck.retries: 0 is outside 1-10",
        ),
        (
            "start period above 300",
            lambda t, d: container(d, "web")["healthCheck"].update(startPeriod=301),
            "containerDefinitions[web].healthCheck.startPeriod: 301 is outside 0-300",
        ),
        (
            "no health check",
            lambda t, d: container(d, "nginx").pop("healthCheck"),
            "containerDefinitions[nginx].healthCheck: missing",
        ),
    ],
    "rule_stop_timeout_within_fargate_limit": [
        (
            "above 120",
            lambda t, d: container(d, "nginx").update(stopTimeout=121),
            "containerDefinitions[nginx].stopTimeout: 121 is above Fargate's 120",
        ),
    ],
    "rule_no_tmpfs_on_fargate": [
        (
            "tmpfs",
            lambda t, d: container(d, "web").update(
                linuxParameters={"tmpfs": [{"containerPath": "/scratch", "size": 64}]}
            ),
            "containerDefinitions[web].linuxParameters.tmpfs",
        ),
    ],
    "rule_containers_have_read_only_root": [
        (
            "writable root",
            lambda t, d: container(d, "nginx").update(readonlyRootFilesystem=False),
            "containerDefinitions[nginx].readonlyRootFilesystem: must be true",
        ),
    ],
    "rule_containers_run_as_non_root": [
        ("root by number", lambda t, d: container(d, "web").update(user="0:0"), "containerDefinitions[web].user"),
        ("no user", lambda t, d: container(d, "nginx").pop("user"), "containerDefinitions[nginx].user"),
    ],
    "rule_images_pinned_by_digest": [
        (
            "tag",
            lambda t, d: container(d, "web").update(image="flask-stack/web:latest"),
            "containerDefinitions[web].image",
        ),
    ],
    "rule_containers_log_to_awslogs": [
        (
            "other driver",
            lambda t, d: container(d, "web")["logConfiguration"].update(logDriver="json-file"),
            "containerDefinitions[web].logConfiguration.logDriver: must be awslogs",
        ),
        (
            "no stream prefix",
            lambda t, d: container(d, "nginx")["logConfiguration"]["options"].pop("awslogs-stream-prefix"),
            "containerDefinitions[nginx].logConfiguration.options.awslogs-stream-prefix: missing",
        ),
    ],
    "rule_memory_reservations_fit_task_memory": [
        (
            "more than the task",
            lambda t, d: container(d, "web").update(memoryReservation=4096),
            "containerDefinitions[*].memoryReservation",
        ),
    ],
    "rule_fargate_cpu_memory_pair": [
        (
            "memory not allowed with the cpu",
            lambda t, d: d.update(cpu="256", memory="4096"),
            "memory: 4096 MiB is not allowed with cpu 256",
        ),
        ("not a Fargate cpu", lambda t, d: d.update(cpu="3072"), "cpu: 3072 is not a Fargate size"),
    ],
    "rule_nginx_waits_for_healthy_web": [
        (
            "started only",
            lambda t, d: container(d, "nginx").update(dependsOn=[{"containerName": "web", "condition": "START"}]),
            "containerDefinitions[nginx].dependsOn",
        ),
    ],
    "rule_web_stop_timeout_covers_gunicorn_shutdown": [
        (
            "graceful timeout raised",
            lambda t, d: environment(d, "web", "GUNICORN_GRACEFUL_TIMEOUT", "40"),
            f"{WEB_STOP} 35 {MUST_EXCEED} = 43",
        ),
        (
            "Fargate's default stop timeout when unset",
            lambda t, d: (
                environment(d, "web", "GUNICORN_GRACEFUL_TIMEOUT", "27") or container(d, "web").pop("stopTimeout")
            ),
            f"{WEB_STOP} 30 {MUST_EXCEED} = 30",
        ),
        (
            "gunicorn's drain default when unset",
            lambda t, d: (
                environment(d, "web", "GUNICORN_DRAIN_SECONDS", None)
                or environment(d, "web", "GUNICORN_GRACEFUL_TIMEOUT", "32")
            ),
            f"{WEB_STOP} 35 {MUST_EXCEED} = 35",
        ),
    ],
    "rule_nginx_upstream_is_web_on_loopback": [
        (
            "compose's service name",
            lambda t, d: environment(d, "nginx", "WEB_UPSTREAM", "web:8000"),
            "containerDefinitions[nginx].environment.WEB_UPSTREAM: 'web:8000' must be 127.0.0.1:8000",
        ),
        (
            "gunicorn on another port",
            lambda t, d: environment(d, "web", "GUNICORN_PORT", "9000"),
            "containerDefinitions[nginx].environment.WEB_UPSTREAM: '127.0.0.1:8000' must be 127.0.0.1:9000",
        ),
        (
            "gunicorn on every interface",
            lambda t, d: environment(d, "web", "GUNICORN_HOST", None),
            "containerDefinitions[web].environment.GUNICORN_HOST: gunicorn listens on 0.0.0.0; it must be 127.0.0.1",
        ),
        (
            "web maps gunicorn's port",
            lambda t, d: container(d, "web").update(portMappings=[{"containerPort": 8000, "protocol": "tcp"}]),
            "containerDefinitions[web].portMappings: [8000] must be none",
        ),
    ],
    "rule_writable_mounts_are_image_volumes": [
        (
            "a path no image declares",
            lambda t, d: container(d, "nginx")["mountPoints"].append(
                {"sourceVolume": "nginx-tmp", "containerPath": "/var/run/extra", "readOnly": False}
            ),
            "containerDefinitions[nginx].mountPoints[/var/run/extra]: services/nginx/Dockerfile must declare VOLUME",
        ),
    ],
    "rule_deployment_keeps_full_capacity": [
        (
            "capacity lost",
            lambda t, d: resource(t, "Service")["DeploymentConfiguration"].update(MinimumHealthyPercent=50),
            "Resources.Service.Properties.DeploymentConfiguration.MinimumHealthyPercent: 50 must be 100",
        ),
        (
            "no room for new tasks",
            lambda t, d: resource(t, "Service")["DeploymentConfiguration"].update(MaximumPercent=100),
            "Resources.Service.Properties.DeploymentConfiguration.MaximumPercent: 100",
        ),
        (
            "above 200",
            lambda t, d: resource(t, "Service")["DeploymentConfiguration"].update(MaximumPercent=250),
            "Resources.Service.Properties.DeploymentConfiguration.MaximumPercent: 250",
        ),
    ],
    "rule_deployment_rolls_back_on_failure": [
        (
            "no rollback",
            lambda t, d: resource(t, "Service")["DeploymentConfiguration"]["DeploymentCircuitBreaker"].update(
                Rollback=False
            ),
            "Resources.Service.Properties.DeploymentConfiguration.DeploymentCircuitBreaker",
        ),
    ],
    "rule_deregistration_delay_range": [
        (
            "above 3600",
            lambda t, d: attribute(resource(t, "TargetGroup"), "deregistration_delay.timeout_seconds", "4000"),
            "Resources.TargetGroup.Properties.TargetGroupAttributes[deregistration_delay.timeout_seconds]: 4000 is "
            "outside 0-3600",
        ),
    ],
    "rule_deregistration_delay_covers_longest_request": [
        (
            "shorter than nginx's read timeout",
            lambda t, d: environment(d, "nginx", "NGINX_PROXY_READ_TIMEOUT", "1m"),
            "Resources.TargetGroup.Properties.TargetGroupAttributes[deregistration_delay.timeout_seconds]: 30 is "
            "shorter than NGINX_PROXY_READ_TIMEOUT (1m)",
        ),
        (
            "read timeout unset: the image's default counts",
            lambda t, d: (
                environment(d, "nginx", "NGINX_PROXY_READ_TIMEOUT", None),
                attribute(resource(t, "TargetGroup"), "deregistration_delay.timeout_seconds", "1"),
            ),
            "Resources.TargetGroup.Properties.TargetGroupAttributes[deregistration_delay.timeout_seconds]: 1 is "
            f"shorter than NGINX_PROXY_READ_TIMEOUT ({nginx_config.defaults()['NGINX_PROXY_READ_TIMEOUT']})",
        ),
    ],
    "rule_health_check_path_served_by_nginx": [
        (
            "a path nothing serves",
            lambda t, d: resource(t, "TargetGroup").update(HealthCheckPath="/health"),
            "Resources.TargetGroup.Properties.HealthCheckPath: '/health' is not one nginx serves",
        ),
        (
            "nginx's loopback-only path",
            lambda t, d: resource(t, "TargetGroup").update(HealthCheckPath="/nginx-health"),
            "Resources.TargetGroup.Properties.HealthCheckPath: '/nginx-health' is not one nginx serves",
        ),
        (
            "the default path",
            lambda t, d: resource(t, "TargetGroup").pop("HealthCheckPath"),
            "Resources.TargetGroup.Properties.HealthCheckPath: '/' is not one nginx serves",
        ),
    ],
    "rule_load_balancer_port_is_nginx_port": [
        (
            "gunicorn's port",
            lambda t, d: resource(t, "Service")["LoadBalancers"][0].update(ContainerPort=8000),
            "Resources.Service.Properties.LoadBalancers[0].ContainerPort: 8000 is not a port nginx listens on",
        ),
        (
            "web behind the load balancer",
            lambda t, d: resource(t, "Service")["LoadBalancers"][0].update(ContainerName="web"),
            "Resources.Service.Properties.LoadBalancers[0].ContainerName: 'web' must be nginx",
        ),
        (
            "port not mapped",
            lambda t, d: container(d, "nginx").update(portMappings=[]),
            "containerDefinitions[nginx].portMappings: must map 8080",
        ),
        (
            "target group port",
            lambda t, d: resource(t, "TargetGroup").update(Port=80),
            "Resources.TargetGroup.Properties.Port: 80 is not a port nginx listens on",
        ),
    ],
    "rule_load_balancer_idle_timeout_below_nginx_keepalive": [
        (
            "idle timeout above nginx's keep-alive",
            lambda t, d: attribute(
                resource(t, "LoadBalancer"), "idle_timeout.timeout_seconds", "120", "LoadBalancerAttributes"
            ),
            "Resources.LoadBalancer.Properties.LoadBalancerAttributes[idle_timeout.timeout_seconds]: 120 must be below",
        ),
    ],
    "rule_log_group_has_retention": [
        (
            "logs kept for ever",
            lambda t, d: resource(t, "LogGroup").pop("RetentionInDays"),
            "Resources.LogGroup.Properties.RetentionInDays: must be set",
        ),
        (
            "a group from elsewhere",
            lambda t, d: template_container(t, "web")["LogConfiguration"]["Options"].update(
                {"awslogs-group": "/somewhere/else"}
            ),
            "Resources.TaskDefinition.Properties.ContainerDefinitions[web].LogConfiguration.Options.awslogs-group",
        ),
    ],
    "rule_no_secret_in_environment": [
        (
            "a password by name",
            lambda t, d: environment(d, "web", "APP_DB_PASSWORD", "hunter2"),
            "containerDefinitions[web].environment.APP_DB_PASSWORD: looks like a secret",
        ),
        (
            "a URL with a password in it",
            lambda t, d: environment(d, "web", "DATABASE_URL", "postgresql://app:hunter2@db:5432/app"),
            "containerDefinitions[web].environment.DATABASE_URL: looks like a secret",
        ),
        (
            "an AWS access key id",
            lambda t, d: environment(d, "nginx", "UPLOADS", "AKIAIOSFODNN7EXAMPLE"),
            "containerDefinitions[nginx].environment.UPLOADS: looks like a secret",
        ),
    ],
    "rule_secrets_only_in_one_shot_containers": [
        (
            "the password in web's environment for its whole life",
            lambda t, d: (
                with_database(t, d),
                container(d, "web").update(secrets=container(d, "db-password")["secrets"]),
            ),
            "containerDefinitions[web].secrets: a long-running container would hold them in its environment",
        ),
        (
            "a sidecar nobody waits for, which may run on",
            lambda t, d: (with_database(t, d), container(d, "web").pop("dependsOn")),
            "containerDefinitions[db-password].secrets: a long-running container would hold them",
        ),
    ],
    "rule_json_keys_only_in_secrets_manager_references": [
        (
            "a JSON key of an SSM parameter",
            lambda t, d: (
                with_database(t, d),
                container(d, "db-password")["secrets"][0].update(
                    valueFrom="arn:aws:ssm:eu-west-1:123456789012:parameter/shop/db:password::"
                ),
            ),
            "names a JSON key of an SSM parameter",
        ),
    ],
    "rule_execution_role_reads_exactly_the_tasks_secrets": [
        (
            "the role reads another secret",
            lambda t, d: (
                with_database(t, d),
                t["Parameters"]["DatabasePasswordSecretArn"].update(Default=OTHER_SECRET),
            ),
            f"executionRoleArn: the execution role may not read {DATABASE_PARAMETERS['DatabasePasswordSecretArn']} "
            "(secretsmanager:GetSecretValue); the task cannot start",
        ),
        (
            "the role reads every secret",
            lambda t, d: (with_database(t, d), password_statement(t).update(Resource="*")),
            "Statement[0]: secretsmanager:GetSecretValue on '*', which no container's secrets name",
        ),
        (
            "a key by wildcard",
            lambda t, d: (
                with_database(t, d),
                password_policy(t)["PolicyDocument"]["Statement"].append(
                    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
                ),
            ),
            "Statement[1]: kms:Decrypt on '*'; name the one key",
        ),
        (
            "a secret from a store ECS does not read",
            lambda t, d: (
                with_database(t, d),
                container(d, "db-password")["secrets"][0].update(valueFrom="arn:aws:s3:::bucket/password"),
            ),
            "'arn:aws:s3:::bucket/password' is not a Secrets Manager or SSM ARN",
        ),
    ],
    "rule_database_password_reaches_web": [
        (
            "no password file in web",
            lambda t, d: (with_database(t, d), container(d, "web")["mountPoints"].pop()),
            "containerDefinitions[web].mountPoints[/run/secrets]: APP_DB_PASSWORD_FILE's folder must be a read-only",
        ),
        (
            "web may write the password",
            lambda t, d: (with_database(t, d), container(d, "web")["mountPoints"][-1].update(readOnly=False)),
            "containerDefinitions[web].mountPoints[/run/secrets]: APP_DB_PASSWORD_FILE's folder must be a read-only",
        ),
        (
            "nothing writes it",
            lambda t, d: (with_database(t, d), container(d, "db-password").pop("secrets")),
            "no one-shot container with the secret writes volume 'db-password'",
        ),
        (
            "web starts before it is written",
            lambda t, d: (with_database(t, d), container(d, "web").pop("dependsOn")),
            "containerDefinitions[web].dependsOn: must wait for db-password with condition SUCCESS",
        ),
    ],
}

# An ARN, not a password.
OTHER_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:someone-else-XyZ123"  # noqa: S105


def password_policy(template):
    (policy,) = [
        branch
        for policy in resource(template, "ExecutionRole")["Policies"]
        if "Fn::If" in policy
        for branch in policy["Fn::If"][1:2]
    ]
    return policy


def password_statement(template):
    return password_policy(template)["PolicyDocument"]["Statement"][0]


CASES = [
    pytest.param(rule_name, breaks, expected, id=f"{rule_name}: {case}")
    for rule_name, cases in BROKEN_CASES.items()
    for case, breaks, expected in cases
]


def test_every_rule_has_a_broken_case():
    names = {rule.__name__ for rule in validate.all_rules()}
    assert names - set(BROKEN_CASES) == set(), "rules without a broken case"
    assert set(BROKEN_CASES) - names == set(), "broken cases for rules that do not exist"


@pytest.mark.parametrize("rule_name, breaks, expected", CASES)
def test_the_rule_rejects_a_broken_copy_naming_the_field(rule_name, breaks, expected, template, task_definition):
    rule = getattr(rules, rule_name)
    breaks(template, task_definition)

    messages = rule(template, task_definition)

    assert any(expected in message for message in messages), messages


def test_a_one_shot_container_needs_no_health_check(database_deployment):
    template, task_definition = database_deployment
    assert "healthCheck" not in container(task_definition, "db-password")
    assert rules.rule_health_check_ranges(template, task_definition) == []
    container(task_definition, "db-password")["essential"] = True
    assert rules.rule_health_check_ranges(template, task_definition) == [
        "containerDefinitions[db-password].healthCheck: missing; ECS acts only on checks it defines"
    ]


def test_the_secret_arn_drops_a_json_key_stage_and_version():
    arn = DATABASE_PARAMETERS["DatabasePasswordSecretArn"]
    assert rules.secret_arn(f"{arn}:password::") == arn
    assert rules.secret_arn(f"{arn}:password:AWSCURRENT:") == arn
    assert rules.secret_arn(arn) == arn
    parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/db/password"
    assert rules.secret_arn(parameter) == parameter


def test_a_password_file_path_is_not_a_secret(task_definition):
    environment(task_definition, "web", "APP_DB_PASSWORD_FILE", "/run/secrets/db_password")
    assert rules.rule_no_secret_in_environment({}, task_definition) == []
