"""Which flows a process serves: the shipped `ivr_flows/` directory (or `CENTRALITA_FLOWS_DIR` instead),
then each of `CENTRALITA_EXTRA_FLOWS_DIRS`. A flow in a later directory replaces one of the same name
in an earlier directory, so a deployment can adapt a shipped flow without editing it.

Broken files are reported, not fatal: the process serves every good flow, and calls for a broken one
get the FastAGI server's fallback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from voice.ivr.checks import FlowProblem
from voice.ivr.loader import FLOW_SUFFIXES, FlowError, load_flow
from voice.ivr.schema import Flow

SHIPPED_DIRECTORY_NAME = "ivr_flows"


def shipped_flows_dir() -> Path | None:
    """The flows that come with Centralita: next to the packages in a source checkout or an editable
    install; under `<prefix>/share/centralita/` where a wheel puts data files."""
    source_root = Path(__file__).resolve().parent.parent  # voice/flows.py -> the checkout
    candidates = (
        source_root / SHIPPED_DIRECTORY_NAME,
        Path(sys.prefix) / "share" / "centralita" / SHIPPED_DIRECTORY_NAME,
    )
    return next((candidate for candidate in candidates if candidate.is_dir()), None)


def flow_directories(flows_dir: Path | None, extra: Iterable[Path] = ()) -> list[Path]:
    """The directories to load, in order: `flows_dir` (default: the shipped one), then `extra`."""
    first = flows_dir if flows_dir is not None else shipped_flows_dir()
    directories = [first] if first is not None else []
    for directory in extra:
        if directory not in directories:
            directories.append(directory)
    return directories


@dataclass
class FlowCatalogue:
    flows: dict[str, Flow] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # flow name -> the file it came from
    problems: list[FlowProblem] = field(default_factory=list)
    directories: list[Path] = field(default_factory=list)

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.flows


def load_catalogue(directories: Iterable[Path]) -> FlowCatalogue:
    catalogue = FlowCatalogue()
    for directory in directories:
        catalogue.directories.append(directory)
        if not directory.is_dir():
            catalogue.problems.append(FlowProblem(str(directory), None, None, "not a directory"))
            continue
        here: dict[str, Path] = {}
        for path in sorted(p for p in directory.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file()):
            try:
                flow = load_flow(path)
            except FlowError as exc:
                catalogue.problems.extend(exc.problems)
                continue
            if flow.name in here:
                message = f"{flow.name!r} is also the name in {here[flow.name].name}"
                catalogue.problems.append(FlowProblem(path.name, None, "name", message))
                continue
            here[flow.name] = path
            catalogue.flows[flow.name] = flow
            catalogue.paths[flow.name] = path
    return catalogue
