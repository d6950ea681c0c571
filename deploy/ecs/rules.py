"""Our own checks of the template and the rendered task definition: what cfn-lint's
schemas and botocore's ECS model do not know (AWS limits stated only in prose, and how
nginx, gunicorn and the load balancer must agree).

Each rule is a plain function rule_<what>(template, task_definition) -> list of messages,
each message naming the field it is about. validate.py runs every function named rule_*.
"""

import copy
import json
import re
import sys
from pathlib import Path

import cfn_template
import nginx_config
from pushed_images import PINNED

# The web image's own reader of its environment, so the defaults are the ones it applies.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "web"))
from stack.gunicorn_settings import settings_from_env
from stack.settings import settings_from_env as stack_settings_from_env

REPOSITORY = Path(__file__).resolve().parents[2]

# --- Helpers --------------------------------------------------------------------------


def _containers(task_definition):
    return [
        (container.get("name", f"#{index}"), container)
        for index, container in enumerate(task_definition.get("containerDefinitions", []))
    ]


def _container(task_definition, name):
    return dict(_containers(task_definition)).get(name)


def _environment(container):
    return {pair.get("name"): pair.get("value") for pair in container.get("environment", [])}


def _one_shot(container):
    """A container the task does not need running: it does its job and exits."""
    return container.get("essential", True) is False


def _on_fargate(task_definition):
    return "FARGATE" in task_definition.get("requiresCompatibilities", [])


def _resolved(template, value):
    """A template value with parameters at their defaults; None if it needs a deployed stack."""
    try:
        return cfn_template.Resolver(template).resolve(copy.deepcopy(value))
    except cfn_template.Unresolvable:
        return None


def _template_containers(properties):
    """A task definition resource's container definitions as written, both branches of
    each Fn::If (a container present only under a condition) included."""
    for container in properties.get("ContainerDefinitions", []):
        branches = container.get("Fn::If", [None])[1:] if "Fn::If" in container else [container]
        yield from (branch for branch in branches if isinstance(branch, dict) and "Name" in branch)


def _resources(template, resource_type):
    return cfn_template.resources_of_type(template, resource_type)


def _attribute(template, properties_key, properties, key, default):
    for attribute in properties.get(properties_key, []):
        if attribute.get("Key") == key:
            return _resolved(template, attribute.get("Value"))
    return default


def _deregistration_delays(template):
    """(field, seconds) of each target group; ELB's default is 300 seconds."""
    delays = []
    for name, properties in _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup"):
        key = "deregistration_delay.timeout_seconds"
        value = _attribute(template, "TargetGroupAttributes", properties, key, 300)
        delays.append((f"Resources.{name}.Properties.TargetGroupAttributes[{key}]", value))
    return delays


# --- Containers -----------------------------------------------------------------------

# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html
HEALTH_CHECK_RANGES = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10), "startPeriod": (0, 300)}


def rule_health_check_ranges(template, task_definition):
    """Every long-running container has a health check (ECS ignores an image's HEALTHCHECK)
    within the ranges of https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html;
    a one-shot container (essential false) is judged by its exit code instead."""
    messages = []
    for name, container in _containers(task_definition):
        check = container.get("healthCheck")
        if not check and _one_shot(container):
            continue
        if not check:
            messages.append(f"containerDefinitions[{name}].healthCheck: missing; ECS acts only on checks it defines")
            continue
        for key, (low, high) in HEALTH_CHECK_RANGES.items():
            value = check.get(key)
            if value is not None and not low <= value <= high:
                messages.append(f"containerDefinitions[{name}].healthCheck.{key}: {value} is outside {low}-{high}")
    return messages


# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html (stopTimeout)
FARGATE_MAX_STOP_TIMEOUT = 120
FARGATE_DEFAULT_STOP_TIMEOUT = 30


def rule_stop_timeout_within_fargate_limit(template, task_definition):
    """Fargate kills a container at most 120 seconds after the stop signal
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html)."""
    if not _on_fargate(task_definition):
        return []
    return [
        f"containerDefinitions[{name}].stopTimeout: {container['stopTimeout']} is above Fargate's "
        f"{FARGATE_MAX_STOP_TIMEOUT}"
        for name, container in _containers(task_definition)
        if container.get("stopTimeout", 0) > FARGATE_MAX_STOP_TIMEOUT
    ]


def rule_no_tmpfs_on_fargate(template, task_definition):
    """Fargate does not support tmpfs mounts; writable paths are task volumes
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinuxParameters.html)."""
    if not _on_fargate(task_definition):
        return []
    return [
        f"containerDefinitions[{name}].linuxParameters.tmpfs: not supported on Fargate; mount a task volume"
        for name, container in _containers(task_definition)
        if container.get("linuxParameters", {}).get("tmpfs")
    ]


def rule_containers_have_read_only_root(template, task_definition):
    """A compromised process cannot change the image it runs from
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/security-tasks-containers.html)."""
    return [
        f"containerDefinitions[{name}].readonlyRootFilesystem: must be true"
        for name, container in _containers(task_definition)
        if container.get("readonlyRootFilesystem") is not True
    ]


def rule_containers_run_as_non_root(template, task_definition):
    """Every container names a user that is not root, by number, so it holds whatever the
    image says (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/security-tasks-containers.html)."""
    messages = []
    for name, container in _containers(task_definition):
        user = str(container.get("user", ""))
        uid = user.split(":", 1)[0]
        if not uid.isdigit() or int(uid) == 0:
            messages.append(f"containerDefinitions[{name}].user: {user!r} must be a non-zero numeric uid[:gid]")
    return messages


def rule_images_pinned_by_digest(template, task_definition):
    """A digest names one image for ever; a tag can be pushed again
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_image)."""
    return [
        f"containerDefinitions[{name}].image: {container.get('image')!r} is not pinned by @sha256 digest"
        for name, container in _containers(task_definition)
        if not PINNED.match(str(container.get("image", "")))
    ]


def rule_containers_log_to_awslogs(template, task_definition):
    """Fargate sends container output to CloudWatch with the awslogs driver; a stream prefix
    is required on Fargate (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html)."""
    messages = []
    for name, container in _containers(task_definition):
        logging = container.get("logConfiguration", {})
        if logging.get("logDriver") != "awslogs":
            messages.append(f"containerDefinitions[{name}].logConfiguration.logDriver: must be awslogs")
            continue
        for option in ("awslogs-group", "awslogs-region", "awslogs-stream-prefix"):
            if not logging.get("options", {}).get(option):
                messages.append(f"containerDefinitions[{name}].logConfiguration.options.{option}: missing")
    return messages


def rule_memory_reservations_fit_task_memory(template, task_definition):
    """The containers' reservations cannot exceed the task's memory
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html, memoryReservation)."""
    task_memory = int(task_definition.get("memory", 0))
    reserved = sum(
        container.get("memoryReservation") or container.get("memory") or 0
        for _, container in _containers(task_definition)
    )
    if reserved > task_memory:
        return [
            f"containerDefinitions[*].memoryReservation: {reserved} MiB in all, above the task's memory {task_memory}"
        ]
    return []


# https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html
FARGATE_MEMORY_BY_CPU = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def rule_fargate_cpu_memory_pair(template, task_definition):
    """Fargate runs only the CPU/memory pairs of
    https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html"""
    if not _on_fargate(task_definition):
        return []
    cpu, memory = task_definition.get("cpu", ""), task_definition.get("memory", "")
    if not (str(cpu).isdigit() and str(memory).isdigit()):
        return [f"cpu, memory: {cpu!r}, {memory!r} must be CPU units and MiB"]
    allowed = FARGATE_MEMORY_BY_CPU.get(int(cpu))
    if allowed is None:
        return [f"cpu: {cpu} is not a Fargate size ({', '.join(map(str, FARGATE_MEMORY_BY_CPU))})"]
    if int(memory) not in allowed:
        return [f"memory: {memory} MiB is not allowed with cpu {cpu} (from {allowed[0]} to {allowed[-1]})"]
    return []


# --- How the two containers and gunicorn agree ----------------------------------------


def rule_nginx_waits_for_healthy_web(template, task_definition):
    """nginx starts only once gunicorn answers, so the load balancer never reaches an nginx
    without one (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html)."""
    nginx = _container(task_definition, "nginx") or {}
    if {"containerName": "web", "condition": "HEALTHY"} not in nginx.get("dependsOn", []):
        return ["containerDefinitions[nginx].dependsOn: must include web with condition HEALTHY"]
    return []


def _web_settings(environment):
    """What the web image makes of this environment: gunicorn's settings and the drain's."""
    return settings_from_env(environment, cpus=1), stack_settings_from_env(environment)


def rule_web_stop_timeout_covers_gunicorn_shutdown(template, task_definition):
    """web drains, then its workers finish their requests, before ECS's SIGKILL
    (stopTimeout: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html)."""
    web = _container(task_definition, "web")
    if web is None:
        return ["containerDefinitions[web]: missing"]
    environment = _environment(web)
    gunicorn, stack = _web_settings(environment)
    shutdown = stack["DRAIN_SECONDS"] + gunicorn["graceful_timeout"]
    stop_timeout = web.get("stopTimeout", FARGATE_DEFAULT_STOP_TIMEOUT)
    if stop_timeout <= shutdown:
        return [
            f"containerDefinitions[web].stopTimeout: {stop_timeout} must exceed GUNICORN_DRAIN_SECONDS + "
            f"GUNICORN_GRACEFUL_TIMEOUT = {shutdown}"
        ]
    return []


def rule_nginx_upstream_is_web_on_loopback(template, task_definition):
    """In awsvpc mode a task's containers share one network namespace and reach each other
    on localhost (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-networking-awsvpc.html).
    gunicorn listens there only and web maps no port, so nothing outside the task reaches
    it, whatever a security group allows: every request comes through nginx."""
    web, nginx = _container(task_definition, "web"), _container(task_definition, "nginx")
    if web is None or nginx is None:
        return ["containerDefinitions: web and nginx are both needed"]
    host, _, port = _web_settings(_environment(web))[0]["bind"].rpartition(":")
    messages = []
    upstream = _environment(nginx).get("WEB_UPSTREAM")
    if upstream != f"127.0.0.1:{port}":
        messages.append(f"containerDefinitions[nginx].environment.WEB_UPSTREAM: {upstream!r} must be 127.0.0.1:{port}")
    if host != "127.0.0.1":
        messages.append(
            f"containerDefinitions[web].environment.GUNICORN_HOST: gunicorn listens on {host}; it must be "
            "127.0.0.1, so only nginx in the same task reaches it"
        )
    if web.get("portMappings"):
        ports = [mapping.get("containerPort") for mapping in web["portMappings"]]
        messages.append(
            f"containerDefinitions[web].portMappings: {ports} must be none; nginx reaches gunicorn on the loopback"
        )
    return messages


# Dockerfile of each container's image, for the VOLUME paths Fargate copies ownership from.
IMAGE_DOCKERFILES = {
    "web": REPOSITORY / "services/web/Dockerfile",
    "nginx": REPOSITORY / "services/nginx/Dockerfile",
    # The one-shot container that writes the database password runs the web image.
    "db-password": REPOSITORY / "services/web/Dockerfile",
}


def declared_volumes(dockerfile):
    """Paths of the VOLUME instructions in a Dockerfile's last stage."""
    text = Path(dockerfile).read_text(encoding="utf-8").replace("\\\n", " ")
    last_stage = re.split(r"^\s*FROM\s", text, flags=re.MULTILINE | re.IGNORECASE)[-1]
    paths = []
    for argument in re.findall(r"^\s*VOLUME\s+(.+)$", last_stage, re.MULTILINE | re.IGNORECASE):
        argument = argument.strip()
        paths += json.loads(argument) if argument.startswith("[") else argument.split()
    return paths


def rule_writable_mounts_are_image_volumes(template, task_definition):
    """Fargate creates a bind mount owned by root with mode 0755 unless the image declares
    the same path with VOLUME, whose owner and mode it then copies: without that, a non-root
    container cannot write there (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html)."""
    messages = []
    for name, container in _containers(task_definition):
        mounts = [mount for mount in container.get("mountPoints", []) if not mount.get("readOnly")]
        if not mounts:
            continue
        if name not in IMAGE_DOCKERFILES:
            messages.append(f"containerDefinitions[{name}].mountPoints: no Dockerfile known to check VOLUME in")
            continue
        declared = declared_volumes(IMAGE_DOCKERFILES[name])
        for mount in mounts:
            if mount.get("containerPath") not in declared:
                messages.append(
                    f"containerDefinitions[{name}].mountPoints[{mount.get('containerPath')}]: "
                    f"{IMAGE_DOCKERFILES[name].relative_to(REPOSITORY)} must declare VOLUME "
                    f"{mount.get('containerPath')}, or user {container.get('user')} cannot write to it on Fargate"
                )
    return messages


# --- The service, the load balancer and the logs ---------------------------------------


def rule_deployment_keeps_full_capacity(template, task_definition):
    """A rolling deployment starts new tasks before stopping old ones: minimumHealthyPercent
    100 loses no capacity; maximumPercent above it (at most 200) leaves room for the new ones
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service_definition_parameters.html)."""
    messages = []
    for name, properties in _resources(template, "AWS::ECS::Service"):
        field = f"Resources.{name}.Properties.DeploymentConfiguration"
        configuration = _resolved(template, properties.get("DeploymentConfiguration", {})) or {}
        minimum = configuration.get("MinimumHealthyPercent", 100)
        maximum = configuration.get("MaximumPercent", 200)
        if minimum != 100:
            messages.append(f"{field}.MinimumHealthyPercent: {minimum} must be 100 (no capacity lost while deploying)")
        if not minimum < maximum <= 200:
            messages.append(f"{field}.MaximumPercent: {maximum} must be above MinimumHealthyPercent and at most 200")
    return messages


def rule_deployment_rolls_back_on_failure(template, task_definition):
    """A release whose tasks never become healthy is rolled back
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html)."""
    messages = []
    for name, properties in _resources(template, "AWS::ECS::Service"):
        breaker = properties.get("DeploymentConfiguration", {}).get("DeploymentCircuitBreaker", {})
        if _resolved(template, breaker) != {"Enable": True, "Rollback": True}:
            messages.append(
                f"Resources.{name}.Properties.DeploymentConfiguration.DeploymentCircuitBreaker: "
                "must be {Enable: true, Rollback: true}"
            )
    return messages


# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay
DEREGISTRATION_DELAY_RANGE = (0, 3600)


def rule_deregistration_delay_range(template, task_definition):
    """ELB accepts 0-3600 seconds
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay)."""
    low, high = DEREGISTRATION_DELAY_RANGE
    return [
        f"{field}: {value} is outside {low}-{high}"
        for field, value in _deregistration_delays(template)
        if value is None or not low <= int(value) <= high
    ]


def rule_deregistration_delay_covers_longest_request(template, task_definition):
    """A stopping task keeps its requests for the deregistration delay: it must last as long
    as the longest request nginx lets run, NGINX_PROXY_READ_TIMEOUT
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay)."""
    nginx = _container(task_definition, "nginx")
    raw = nginx_config.setting(_environment(nginx or {}), "NGINX_PROXY_READ_TIMEOUT")
    longest = nginx_config.seconds(raw)
    return [
        f"{field}: {value} is shorter than NGINX_PROXY_READ_TIMEOUT ({raw})"
        for field, value in _deregistration_delays(template)
        if value is not None and int(value) < longest
    ]


# The paths the stack's contract (docs/design.md) promises through nginx for health checks.
CONTRACT_HEALTH_PATHS = ("/healthz",)


def rule_health_check_path_served_by_nginx(template, task_definition):
    """The load balancer's health check asks nginx for a path it answers to anyone: the
    contract's /healthz (proxied to gunicorn) or an exact `location =` that is neither
    internal nor `deny all`
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)."""
    served = set(CONTRACT_HEALTH_PATHS) | set(nginx_config.public_exact_locations())
    messages = []
    for name, properties in _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup"):
        path = _resolved(template, properties.get("HealthCheckPath", "/"))
        if path not in served:
            messages.append(
                f"Resources.{name}.Properties.HealthCheckPath: {path!r} is not one nginx serves to the "
                f"load balancer ({', '.join(sorted(served))})"
            )
    return messages


def rule_load_balancer_port_is_nginx_port(template, task_definition):
    """The service registers nginx's listening port; the container maps it and the target
    group sends to it (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html)."""
    listening = nginx_config.listen_ports()
    messages = []
    for name, properties in _resources(template, "AWS::ECS::Service"):
        for index, target in enumerate(properties.get("LoadBalancers", [])):
            field = f"Resources.{name}.Properties.LoadBalancers[{index}]"
            container_name, port = target.get("ContainerName"), _resolved(template, target.get("ContainerPort"))
            if container_name != "nginx":
                messages.append(f"{field}.ContainerName: {container_name!r} must be nginx")
            if port not in listening:
                messages.append(f"{field}.ContainerPort: {port} is not a port nginx listens on {listening}")
            container = _container(task_definition, container_name) or {}
            if port not in [mapping.get("containerPort") for mapping in container.get("portMappings", [])]:
                messages.append(f"containerDefinitions[{container_name}].portMappings: must map {port}")
    for name, properties in _resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup"):
        port = _resolved(template, properties.get("Port"))
        if port not in listening:
            messages.append(f"Resources.{name}.Properties.Port: {port} is not a port nginx listens on {listening}")
    return messages


def rule_load_balancer_idle_timeout_below_nginx_keepalive(template, task_definition):
    """The target's keep-alive must outlast the load balancer's idle timeout, or the ALB may
    reuse a connection nginx is closing (a 502)
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout)."""
    keepalive = nginx_config.keepalive_timeout()
    messages = []
    for name, properties in _resources(template, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        key = "idle_timeout.timeout_seconds"
        idle = _attribute(template, "LoadBalancerAttributes", properties, key, 60)
        if idle is None or int(idle) >= keepalive:
            messages.append(
                f"Resources.{name}.Properties.LoadBalancerAttributes[{key}]: {idle} must be below "
                f"nginx's keepalive_timeout ({keepalive}s)"
            )
    return messages


def rule_log_group_has_retention(template, task_definition):
    """The containers' awslogs group is this template's log group, and it expires logs
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html)."""
    log_groups = dict(_resources(template, "AWS::Logs::LogGroup"))
    messages = []
    for name, properties in _resources(template, "AWS::ECS::TaskDefinition"):
        for container in _template_containers(properties):
            field = (
                f"Resources.{name}.Properties.ContainerDefinitions[{container.get('Name')}]"
                ".LogConfiguration.Options.awslogs-group"
            )
            group = container.get("LogConfiguration", {}).get("Options", {}).get("awslogs-group")
            if not (isinstance(group, dict) and group.get("Ref") in log_groups):
                messages.append(f"{field}: must be !Ref to a log group of this template")
            elif not log_groups[group["Ref"]].get("RetentionInDays"):
                messages.append(f"Resources.{group['Ref']}.Properties.RetentionInDays: must be set")
    return messages


# --- Secrets --------------------------------------------------------------------------

# Names that say a value is a secret; a *_FILE name holds the path to one, which is fine.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
# Values that are secrets whatever their name: a URL with a password in it, an AWS access
# key id, a PEM private key.
SECRET_VALUE = re.compile(r"://[^/\s:@]+:[^/\s@]+@|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def rule_no_secret_in_environment(template, task_definition):
    """A task definition's environment is plain text to anyone who may describe it, and in
    every container's /proc: a secret belongs in Secrets Manager or SSM, named in `secrets`
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html)."""
    messages = []
    for name, container in _containers(task_definition):
        for key, value in _environment(container).items():
            secret_name = SECRET_NAME.search(key or "") and not (key or "").endswith("_FILE")
            if value and (secret_name or SECRET_VALUE.search(value)):
                messages.append(
                    f"containerDefinitions[{name}].environment.{key}: looks like a secret; store it in Secrets "
                    "Manager or SSM and name it in a one-shot container's secrets (valueFrom)"
                )
    return messages


def _awaited(task_definition, name):
    """Another container starts only once this one has exited (dependsOn SUCCESS or COMPLETE):
    it is a step before them, not a sidecar that may run on."""
    return any(
        dependency.get("containerName") == name and dependency.get("condition") in ("SUCCESS", "COMPLETE")
        for _, container in _containers(task_definition)
        for dependency in container.get("dependsOn", [])
    )


def rule_secrets_only_in_one_shot_containers(template, task_definition):
    """ECS hands `secrets` to a container as environment variables, there for its whole
    life and its children's. Only a one-shot container (essential false, and awaited by
    another's dependsOn SUCCESS or COMPLETE) may take them, to write them to a file of the
    task's and exit (the stack's secrets are files)."""
    return [
        f"containerDefinitions[{name}].secrets: a long-running container would hold them in its environment; "
        "give them to a one-shot container that writes a file and another awaits (as db-password)"
        for name, container in _containers(task_definition)
        if container.get("secrets") and not (_one_shot(container) and _awaited(task_definition, name))
    ]


def rule_json_keys_only_in_secrets_manager_references(template, task_definition):
    """<ARN>:<json-key>:<stage>:<version> picks a key of a Secrets Manager secret; an SSM
    parameter has no such form, and ECS refuses it when the task starts
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html)."""
    return [
        f"containerDefinitions[{name}].secrets[{secret.get('name')}].valueFrom: {secret['valueFrom']!r} names a "
        "JSON key of an SSM parameter; only a Secrets Manager secret has keys"
        for name, container in _containers(task_definition)
        for secret in container.get("secrets", [])
        if ":ssm:" in secret.get("valueFrom", "") and secret["valueFrom"].split(":parameter/", 1)[-1].count(":")
    ]


# The action ECS's execution role needs to read a secret, by the service its ARN names
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-ssm-paramstore.html).
SECRET_READ_ACTIONS = {"secretsmanager": "secretsmanager:GetSecretValue", "ssm": "ssm:GetParameters"}


def secret_arn(value_from):
    """The secret's or parameter's own ARN in a valueFrom: a Secrets Manager ARN has seven
    colon-separated fields, and what follows picks a JSON key, a stage or a version."""
    fields = value_from.split(":")
    return ":".join(fields[:7]) if fields[2:3] == ["secretsmanager"] else value_from


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _execution_role_statements(template, task_definition):
    """(field, statement) of every policy statement of the execution role the task names,
    resolved with the deployment's parameters; None when the role is not this template's."""
    for _, properties in _resources(template, "AWS::ECS::TaskDefinition"):
        role = properties.get("ExecutionRoleArn", {})
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            return None
        role_name = role["Fn::GetAtt"][0]
        role_properties = template["Resources"][role_name].get("Properties", {})
        resolver = cfn_template.Resolver(template)
        statements = []
        for policy in role_properties.get("Policies", []):
            while "Fn::If" in policy:
                condition, if_true, if_false = policy["Fn::If"]
                policy = if_true if resolver.condition(condition) else if_false
            if policy == {"Ref": "AWS::NoValue"}:
                continue
            written = _as_list(policy["PolicyDocument"].get("Statement", []))
            whole = _resolved(template, written)
            for index, statement in enumerate(whole if whole is not None else written):
                field = f"Resources.{role_name}.Properties.Policies[{policy['PolicyName']}].Statement[{index}]"
                resolved = statement if whole is not None else _resolved(template, statement)
                if resolved is None:
                    # A resource built from the region or account (the logs' ARN): what the
                    # statement allows still counts, on a resource known once deployed.
                    resolved = {key: _resolved(template, statement.get(key)) for key in ("Effect", "Action")}
                    resolved["Resource"] = "(known once deployed)"
                statements.append((field, resolved))
        return statements
    return None


def _secret_grants(statements):
    """(field, action, resource) of each read of a secret store the statements allow."""
    for field, statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            service = action.split(":", 1)[0]
            if service in SECRET_READ_ACTIONS or action in ("*", "kms:Decrypt"):
                for resource in _as_list(statement.get("Resource", [])):
                    yield field, action, resource


def rule_execution_role_reads_exactly_the_tasks_secrets(template, task_definition):
    """ECS reads each secret with the task's execution role before any container starts, so
    the role must be allowed to read it; and it is allowed to read nothing else, by name,
    never by wildcard
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html)."""
    used = {
        secret_arn(secret.get("valueFrom", ""))
        for _, container in _containers(task_definition)
        for secret in container.get("secrets", [])
    }
    statements = _execution_role_statements(template, task_definition)
    if statements is None:
        return ["executionRoleArn: must be the template's own role, whose policy the rules can read"] if used else []
    grants = list(_secret_grants(statements))
    messages = []
    for arn in sorted(used):
        service = arn.split(":")[2] if arn.count(":") >= 2 else ""
        action = SECRET_READ_ACTIONS.get(service)
        if action is None:
            messages.append(f"containerDefinitions[*].secrets.valueFrom: {arn!r} is not a Secrets Manager or SSM ARN")
        elif not any(granted in (action, f"{service}:*") and resource == arn for _, granted, resource in grants):
            messages.append(
                f"executionRoleArn: the execution role may not read {arn} ({action}); the task cannot start"
            )
    for field, action, resource in grants:
        if action == "kms:Decrypt":
            if "*" in str(resource):
                messages.append(f"{field}: kms:Decrypt on {resource!r}; name the one key that encrypts the secret")
        elif resource not in used:
            messages.append(
                f"{field}: {action} on {resource!r}, which no container's secrets name; the role reads exactly "
                "the task's secrets"
            )
    return messages


def rule_database_password_reaches_web(template, task_definition):
    """With a database, web reads the password from APP_DB_PASSWORD_FILE: a read-only mount of
    the volume a one-shot container with the secret writes, and web starts only once that
    container has succeeded (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html)."""
    web = _container(task_definition, "web") or {}
    settings = stack_settings_from_env(_environment(web))
    if not settings["DB_HOST"]:
        return []
    folder = settings["DB_PASSWORD_FILE"].rpartition("/")[0]
    mount = next((m for m in web.get("mountPoints", []) if m.get("containerPath") == folder), None)
    if mount is None or not mount.get("readOnly"):
        return [
            f"containerDefinitions[web].mountPoints[{folder}]: APP_DB_PASSWORD_FILE's folder must be a read-only mount"
        ]
    writers = [
        name
        for name, container in _containers(task_definition)
        if container.get("secrets")
        and _one_shot(container)
        and any(m.get("sourceVolume") == mount.get("sourceVolume") for m in container.get("mountPoints", []))
    ]
    if not writers:
        return [
            f"containerDefinitions[web].mountPoints[{folder}]: no one-shot container with the secret writes "
            f"volume {mount.get('sourceVolume')!r}"
        ]
    if not any({"containerName": writer, "condition": "SUCCESS"} in web.get("dependsOn", []) for writer in writers):
        return [f"containerDefinitions[web].dependsOn: must wait for {writers[0]} with condition SUCCESS"]
    return []
