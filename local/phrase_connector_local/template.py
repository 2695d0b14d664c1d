"""Reading template.yaml for the local runtime: CloudFormation tags and the intrinsic functions used.

The local runtime creates the template's tables, buckets, queues, secrets, functions and state
machine in moto, so the same file that `sam deploy` uses describes the local stack. Only the
intrinsic functions this template uses are resolved; any other raises TemplateError naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class TemplateError(ValueError):
    """template.yaml uses something the local runtime cannot resolve."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _multi(tag: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {tag: value}

    return construct


for _short, _long in {
    "!Ref": "Ref", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!If": "Fn::If", "!Equals": "Fn::Equals",
    "!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or", "!Join": "Fn::Join", "!Select": "Fn::Select",
    "!Split": "Fn::Split", "!FindInMap": "Fn::FindInMap", "!Condition": "Condition",
}.items():
    _CfnLoader.add_constructor(_short, _multi(_long))


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass with CFN tags only


@dataclass
class Resolver:
    """Resolves Ref, GetAtt and Sub against local physical ids, attributes and parameter values."""

    refs: dict[str, Any]
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::GetAtt":
                return self._get_att(*argument)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key.startswith("Fn::"):
                raise TemplateError(f"template.yaml uses {key}, which the local runtime does not resolve.")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name not in self.refs:
            raise TemplateError(f"Ref to {name!r} has no local value: add it to the local runtime's resource map.")
        return self.refs[name]

    def _get_att(self, name: str, attribute: str) -> Any:
        try:
            return self.attributes[name][attribute]
        except KeyError:
            raise TemplateError(f"GetAtt {name}.{attribute} has no local value.") from None

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token:
                return str(self._get_att(*token.split(".", 1)))
            return str(self._ref(token))

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)
