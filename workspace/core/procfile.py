"""Reads the top-level ``Procfile``: the one list of processes Reelhouse runs.

The format is the one honcho and foreman read (``name: command``, other lines ignored), so a
deployment can run the same file with them, or each line under systemd. Commands may use
``$NAME``, ``${NAME}`` and ``${NAME:-default}``, expanded the way ``sh`` expands them (a default
applies when the variable is unset or empty); ``up`` expands them from the environment plus
its own options and runs the result without a shell. A leading ``python`` is the interpreter
running ``up`` (the project's virtual environment).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from workspace.core.supervisor import ProcessSpec

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_]\w*)(?::-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))",
    re.ASCII,
)


class ProcfileError(ValueError):
    pass


def procfile_read(path: Path) -> dict[str, str]:
    """The file's processes in order: name → command."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        match = _LINE.match(raw.strip())
        if match is None:
            continue
        name, command = match.groups()
        if name in processes:
            raise ProcfileError(f"{path}:{number}: process {name!r} is declared twice")
        processes[name] = command.strip()
    return processes


def procfile_expand(command: str, variables: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name, "")
        if value == "" and match.group("default") is not None:
            return match.group("default")
        if name not in variables:
            raise ProcfileError(f"{command!r} uses ${name}, which is not set and has no default")
        return value

    return _VARIABLE.sub(substitute, command)


def procfile_specs(
    processes: Mapping[str, str],
    *,
    counts: Mapping[str, int],
    variables: Mapping[str, str],
    python: str,
) -> list[ProcessSpec]:
    """One spec per process to run, ``counts[name]`` copies named like honcho's (``worker.1``).

    A name missing from ``counts`` runs once; a count of 0 leaves it out.
    """
    unknown = set(counts) - set(processes)
    if unknown:
        raise ProcfileError(f"No such process in the Procfile: {', '.join(sorted(unknown))}")
    specs = []
    for name, command in processes.items():
        argv = shlex.split(procfile_expand(command, variables))
        if argv and argv[0] == "python":
            argv[0] = python
        for index in range(1, counts.get(name, 1) + 1):
            specs.append(ProcessSpec(f"{name}.{index}", argv))
    return specs
