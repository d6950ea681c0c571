"""CloudFormation's PascalCase property names to the ECS API's camelCase member names.

The names are looked up in botocore's model of RegisterTaskDefinition, case-insensitively,
so the odd ones (EFSVolumeConfiguration -> efsVolumeConfiguration, IAM -> iam) need no
table. Keys of map-typed members (awslogs options, DockerLabels) are data, kept as given.
"""

import botocore.session

# The one member whose CloudFormation name is not its API name with another case.
RENAMED = {"ProxyConfigurationProperties": "properties"}


def register_task_definition_shape():
    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def to_api(value, shape, path="taskDefinition"):
    """`value` (CloudFormation names) with every structure member renamed as in `shape`."""
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return value
        by_lower_name = {name.lower(): name for name in shape.members}
        converted = {}
        for key, item in value.items():
            member = RENAMED.get(key) or by_lower_name.get(key.lower())
            if member is None:
                raise KeyError(f"{path}.{key}: no such member in the ECS API's {shape.name}")
            converted[member] = to_api(item, shape.members[member], f"{path}.{member}")
        return converted
    if shape.type_name == "list" and isinstance(value, list):
        return [to_api(item, shape.member, f"{path}[{index}]") for index, item in enumerate(value)]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: to_api(item, shape.value, f"{path}.{key}") for key, item in value.items()}
    return value
