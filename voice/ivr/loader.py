"""Reading flow files: YAML -> schema -> whole-flow checks, with every error naming file, node, field.

`load_flow` and `load_flows` raise FlowError; `check_directory` returns every problem of every file
(what `centralita flows validate` prints).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import InvalidInput
from voice.ivr.checks import FlowProblem, check
from voice.ivr.schema import Flow, NodeKind

FLOW_SUFFIXES = (".yaml", ".yml")
_KINDS = ", ".join(kind.value for kind in NodeKind)


class FlowError(InvalidInput):
    """A flow file (or several) is wrong; `problems` lists each thing, str() one per line."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def version_of(content: bytes) -> str:
    """A flow's version: the first 12 hex digits of the sha256 of its file."""
    return hashlib.sha256(content).hexdigest()[:12]


def parse_flow(content: bytes, *, file: str) -> tuple[Flow | None, list[FlowProblem]]:
    """The flow in `content` (the bytes of a file called `file`) and what is wrong with it; the flow
    is None unless the list is empty."""
    try:
        data = yaml.load(content, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        return None, [FlowProblem(file, None, None, _yaml_message(exc))]
    if not isinstance(data, dict):
        return None, [
            FlowProblem(file, None, None, "a flow file is a mapping: name, languages, start, nodes, …")
        ]
    if "version" in data:
        return None, [
            FlowProblem(file, None, "version", "set by the loader from the file's content; remove it")
        ]
    try:
        flow = Flow.model_validate({**data, "version": version_of(content)})
    except ValidationError as exc:
        return None, [_problem(file, error) for error in exc.errors(include_url=False)]
    problems = check(flow, file=file)
    return (None if problems else flow), problems


def load_flow(path: str | Path) -> Flow:
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise FlowError([FlowProblem(path.name, None, None, f"cannot read: {exc.strerror or exc}")]) from exc
    flow, problems = parse_flow(content, file=path.name)
    if flow is None:
        raise FlowError(problems)
    return flow


def check_directory(directory: str | Path) -> tuple[dict[str, Flow], list[FlowProblem]]:
    """Every good flow of `directory` by name, and every problem of every file in it."""
    directory = Path(directory)
    flows: dict[str, Flow] = {}
    problems: list[FlowProblem] = []
    if not directory.is_dir():
        return flows, [FlowProblem(str(directory), None, None, "not a directory")]
    owners: dict[str, str] = {}
    for path in sorted(p for p in directory.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file()):
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.name in owners:
            problems.append(
                FlowProblem(path.name, None, "name", f"{flow.name!r} is also the name in {owners[flow.name]}")
            )
            continue
        owners[flow.name] = path.name
        flows[flow.name] = flow
    return flows, problems


def load_flows(directory: str | Path) -> dict[str, Flow]:
    """Every flow of `directory` by name; FlowError naming each broken file if any is."""
    flows, problems = check_directory(directory)
    if problems:
        raise FlowError(problems)
    return flows


def _problem(file: str, error: Any) -> FlowProblem:
    loc = [str(part) for part in error["loc"]]
    node = None
    if len(loc) >= 2 and loc[0] == "nodes":
        node, loc = loc[1], loc[2:]
        if loc and loc[0] in NodeKind.__members__.values():
            loc = loc[1:]  # the union tag pydantic adds: the node's kind
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        loc, message = [*loc, "kind"], f"unknown kind {error['ctx']['tag']!r}; one of: {_KINDS}"
    elif kind == "union_tag_not_found":
        loc, message = [*loc, "kind"], f"missing; one of: {_KINDS}"
    elif kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif loc and loc[-1] == "[key]":
        loc = loc[:-1]
        what = "node id" if node is not None and not loc else "key"
        message = f"bad {what} {error['input']!r}: {message}"
    elif kind != "value_error" and isinstance(error.get("input"), str | int | float):
        message = f"{message} (got {error['input']!r})"
    return FlowProblem(file, node, ".".join(loc) or None, message)


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"not valid YAML{where}: {problem}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a flow with two nodes of the same id is an error."""


def _mapping_without_repeats(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *shared`: its keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} is repeated",
                key_node.start_mark,
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)
