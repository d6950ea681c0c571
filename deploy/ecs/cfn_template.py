"""Read a CloudFormation template and resolve the intrinsic functions a rendered task
definition needs (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, and Fn::If with the template's
Conditions and AWS::NoValue), offline.

Values that only exist once the stack is deployed (a role's ARN) come from `known`, a
mapping such as {"ExecutionRole.Arn": "arn:..."}: anything else unresolvable is an error.
"""

import re

import yaml


class TemplateLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short forms (!Ref, !Sub, !GetAtt ...)."""


def _short_form(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short form's "Resource.Attribute" is the long form's [Resource, Attribute].
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


TemplateLoader.add_multi_constructor("!", _short_form)


def load(path):
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=TemplateLoader)  # noqa: S506 TemplateLoader is a SafeLoader


class Unresolvable(ValueError):
    """A value depends on something only a deployed stack knows."""


# What Ref AWS::NoValue resolves to: the list item or property holding it is left out, as
# CloudFormation leaves it out.
NO_VALUE = object()


class Resolver:
    """Resolves intrinsic functions against parameter values, pseudo parameters and `known`."""

    def __init__(self, template, parameters=None, pseudo=None, known=None):
        self.template = template
        self.parameters = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.pseudo = dict(pseudo or {})
        self.known = dict(known or {})

    def resolve(self, value):
        resolved = self._resolve(value)
        if resolved is NO_VALUE:
            raise Unresolvable("the value is AWS::NoValue")
        return resolved

    def _resolve(self, value):
        if isinstance(value, list):
            return [item for item in map(self._resolve, value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::If":
                name, if_true, if_false = argument
                return self._resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::GetAtt":
                return self._attribute(*argument)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key.startswith("Fn::"):
                raise Unresolvable(f"{key} is not resolved offline")
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def condition(self, name):
        """The value of one of the template's Conditions with these parameters."""
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise Unresolvable(f"the template has no condition {name!r}")
        return self.truth(conditions[name])

    def truth(self, expression):
        """A condition function's value (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""
        ((key, argument),) = expression.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = (self.resolve(side) for side in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.truth(argument[0])
        if key == "Fn::And":
            return all(self.truth(item) for item in argument)
        if key == "Fn::Or":
            return any(self.truth(item) for item in argument)
        raise Unresolvable(f"{key} is not a condition function")

    def _ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name.startswith("AWS::"):
            if name not in self.pseudo:
                raise Unresolvable(f"pseudo parameter {name} has no offline value")
            return self.pseudo[name]
        if name in self.parameters:
            if self.parameters[name] is None:
                raise Unresolvable(f"parameter {name} has no default and was not given")
            return self.parameters[name]
        if name in self.known:
            return self.known[name]
        resource = self.template.get("Resources", {}).get(name)
        if resource and resource.get("Type") == "AWS::Logs::LogGroup":
            # A log group's Ref is its name.
            return self.resolve(resource["Properties"]["LogGroupName"])
        raise Unresolvable(f"Ref {name} is known only once the stack exists")

    def _attribute(self, resource, attribute):
        key = f"{resource}.{attribute}"
        if key in self.known:
            return self.known[key]
        raise Unresolvable(f"Fn::GetAtt {key} is known only once the stack exists")

    def _sub(self, argument):
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._attribute(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def resources_of_type(template, resource_type):
    """The (logical id, properties) of every resource of this type, in template order."""
    return [
        (name, resource.get("Properties", {}))
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    ]
