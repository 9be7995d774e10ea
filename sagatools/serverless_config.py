"""What serverless.yml declares, as the embedded stack needs it: functions, environment, tables.

Only the Serverless variable forms this project uses are resolved: `${self:…}`, `${sls:stage}`,
`${opt:stage|region, 'default'}`, `${param:…}` (from `params`, by stage, then `default`), a fallback that is
another source (`${param:x, self:custom.y}`), variables within a variable's address
(`${self:custom.${param:x}.y}`, innermost first), and `${file(./x.yml):key}` or a whole `${file(./x.yml)}`
(how serverless.yml includes the generated serverless.steps.yml and serverless.stepfunctions.yml); `functions`
and `resources` given as a list are merged as the Serverless Framework merges them.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga.catalogue import STEPS, Step
from sagatools.project import PROJECT_ROOT

SERVERLESS_YML = PROJECT_ROOT / "serverless.yml"
STEPS_YML = PROJECT_ROOT / "serverless.steps.yml"  # the per-step part, generated from saga/definition.py

# Serverless variables only: `${AWS::Region}` and other CloudFormation `!Sub` references pass through.
_VARIABLE = re.compile(r"\$\{((?:self|sls|opt|param):[^${}]+|file\([^()${}]+\)(?::[^${}]+)?)\}")
# A fallback that names another source rather than a value (`self:custom.layers`).
_SOURCE_FALLBACK = re.compile(r"^(?:self|sls|opt|param):")


@functools.cache
def cloudformation_loader() -> type[Any]:
    """A YAML loader that reads `!Ref`, `!GetAtt`, `!Sub` … as plain values instead of failing on the tags:
    libyaml's parser where PyYAML was built with it (the same constructors, a seventh of the time), else
    PyYAML's own. PyYAML is imported here, when a template is parsed (30 ms a start otherwise)."""
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class CloudFormationLoader(base):  # type: ignore[valid-type,misc]
        pass

    CloudFormationLoader.add_multi_constructor("!", any_tag)
    return CloudFormationLoader


def any_tag(loader: Any, suffix: str, node: Any) -> Any:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {suffix: loader.construct_mapping(node, deep=True)}


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # as named under `functions:` (bookX)
    name: str  # the deployed name (lambda-saga-pattern-dev-bookX)
    handler: str  # module path and attribute (functions/book_x.handler)
    environment: dict[str, str]
    timeout: int

    memory_mb: int

    @property
    def step(self) -> Step:
        """The saga step this function runs (its names: saga/catalogue.py)."""
        found = next((step for step in STEPS if step.function == self.key), None)
        if found is None:
            raise ValueError(f"serverless.yml: function {self.key} is not a step of saga/definition.py")
        return found


# Who coordinates a stage's sagas (serverless.yml: params, coordinator): the state machines, or the durable function.
STEPFUNCTIONS, DURABLE = "stepfunctions", "durable"
COORDINATORS = (STEPFUNCTIONS, DURABLE)


# CloudFormation table properties that CreateTable also takes (PITR and SSE are separate calls).
_CREATE_TABLE_PROPERTIES = {"TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes"}


@dataclass(frozen=True)
class ServiceConfig:
    service: str
    stage: str
    functions: dict[str, FunctionSpec]
    tables: dict[str, dict[str, Any]]  # logical id -> resolved CloudFormation Properties
    environment: dict[str, str]
    runtime: str  # python3.12
    architecture: str  # arm64
    coordinator: str = STEPFUNCTIONS  # params: coordinator (STEPFUNCTIONS or DURABLE)

    @property
    def process_environment(self) -> dict[str, str]:
        """Every function's environment in one (the embedded stack runs them all in one process):
        the provider's, and each function's own table. Two functions never give one name two values."""
        merged = dict(self.environment)
        for function in self.functions.values():
            for key, value in function.environment.items():
                if merged.setdefault(key, value) != value:
                    raise ValueError(f"serverless.yml: {key} differs between functions ({merged[key]} and {value})")
        return merged

    def create_table_requests(self) -> list[dict[str, Any]]:
        """A CreateTable request per table, for an emulated DynamoDB."""
        return [
            {key: value for key, value in properties.items() if key in _CREATE_TABLE_PROPERTIES}
            for properties in self.tables.values()
        ]


def load_service_config(stage: str, path: Path = SERVERLESS_YML) -> ServiceConfig:
    raw = _read_yaml(path)
    resolved = _Resolver(raw, stage, path.parent).resolve(raw)
    for key in ("functions", "resources"):
        if isinstance(resolved.get(key), list):
            resolved[key] = _merged(resolved[key])
    provider = resolved["provider"]
    provider_env = {key: str(value) for key, value in (provider.get("environment") or {}).items()}
    functions = {}
    for key, spec in resolved["functions"].items():
        functions[key] = FunctionSpec(
            key=key,
            name=spec.get("name", f"{resolved['service']}-{stage}-{key}"),
            handler=spec["handler"],
            environment={**provider_env, **{k: str(v) for k, v in (spec.get("environment") or {}).items()}},
            timeout=int(spec.get("timeout", provider.get("timeout", 6))),
            memory_mb=int(spec.get("memorySize", provider.get("memorySize", 1024))),
        )
    tables = {
        logical_id: resource["Properties"]
        for logical_id, resource in resolved.get("resources", {}).get("Resources", {}).items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    }
    params = resolved.get("params") or {}
    coordinator = str(params.get(stage, {}).get("coordinator", params.get("default", {}).get("coordinator")))
    if coordinator not in COORDINATORS:
        raise ValueError(f"serverless.yml: stage {stage}'s coordinator is {coordinator}, not one of {COORDINATORS}")
    return ServiceConfig(
        resolved["service"],
        stage,
        functions,
        tables,
        provider_env,
        str(provider["runtime"]),
        str(provider.get("architecture", "x86_64")),
        coordinator,
    )


def _read_yaml(path: Path) -> Any:
    """The template as parsed; kept in the run cache under its content (not its time, which a restore keeps)
    and the fingerprint of PyYAML's code (found, not imported: importing it is what the cache saves)."""
    from sagatools.run_cache import DiskCache, digest_of  # it imports this module (PROJECT_ROOT)

    content = path.read_bytes()  # read once: what is parsed is what the key names
    key = ("yaml", _pyyaml_code(), digest_of(content))
    return DiskCache("templates").get_or_make(key, lambda: parse_yaml(content.decode("utf-8")))


def parse_yaml(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=cloudformation_loader())  # noqa: S506 - a SafeLoader subclass


@functools.cache
def _pyyaml_code() -> str:
    from sagatools.run_cache import code_fingerprint

    spec = importlib.util.find_spec("yaml")
    if spec is None or not spec.submodule_search_locations:
        return "no yaml"
    return code_fingerprint(Path(next(iter(spec.submodule_search_locations))))


def _merged(parts: list[Any]) -> dict[str, Any]:
    """A list of mappings deep-merged in order (later keys win), as the Serverless Framework does."""
    merged: dict[str, Any] = {}
    for part in parts:
        if part:
            _merge_into(merged, part)
    return merged


def _merge_into(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


class _Resolver:
    def __init__(self, raw: dict[str, Any], stage: str, directory: Path) -> None:
        self.raw = raw
        self.stage = stage
        self.directory = directory
        self._files: dict[Path, Any] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, str):
            return self._resolve_string(value)
        return value

    def _resolve_string(self, text: str) -> Any:
        # Innermost variables first, until none is left.
        while match := _VARIABLE.search(text):
            replacement = self._variable(match.group(1))
            if match.group(0) == text:
                return self.resolve(replacement) if isinstance(replacement, str) else replacement
            text = text[: match.start()] + str(replacement) + text[match.end() :]
        return text

    def _variable(self, expression: str) -> Any:
        source, _, fallback = (part.strip() for part in expression.partition(","))
        value = self._lookup(source)
        if value is None:
            if not fallback:
                raise ValueError(f"serverless.yml: cannot resolve ${{{expression}}}")
            if _SOURCE_FALLBACK.match(fallback):
                return self._variable(fallback)
            return fallback.strip("'\"")
        return value

    def _lookup(self, source: str) -> Any:
        if source.startswith("file("):
            name, _, path = source.removeprefix("file(").partition(")")
            whole = self._file(name.strip())
            return self._path(whole, path.removeprefix(":")) if path else self.resolve(whole)
        kind, _, path = source.partition(":")
        if kind == "self":
            return self._path(self.raw, path)
        if kind == "sls" and path == "stage":
            return self.stage
        if kind == "opt":
            return self.stage if path == "stage" else None
        if kind == "param":
            params = self.raw.get("params", {})
            return params.get(self.stage, {}).get(path, params.get("default", {}).get(path))
        raise ValueError(f"serverless.yml: unsupported variable source {source!r}")

    def _file(self, name: str) -> Any:
        path = (self.directory / name).resolve()
        if path not in self._files:
            if not path.is_file():
                raise ValueError(f"serverless.yml: ${{file({name})}} does not exist (run ./build.sh generate)")
            self._files[path] = _read_yaml(path)
        return self._files[path]

    def _path(self, node: Any, path: str) -> Any:
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return self.resolve(node)
