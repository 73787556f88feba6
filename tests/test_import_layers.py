"""Imports point one way (docs/architecture.md, "Layers"), and no module imports itself round.

Every module under workspace/ is parsed with ``ast`` (nothing is imported, so no side effects
and no app registry), and every import counts, including one inside a function: a lazy import
is still a dependency, it only hides the cycle until the function runs. The one exception is a
jobs module importing its service inside a job body (services import jobs at module level).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "workspace"

# Highest layer first; a module takes the first rule its dotted name matches in full. A module
# may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[int, str, str]] = [
    (5, "web and commands", r"workspace\.(urls|wsgi)"),
    (5, "web and commands", r"workspace\.\w+\.(views|urls|admin|forms|apps)"),
    (5, "web and commands", r"workspace\.\w+\.(templatetags|management)(\..+)?"),
    (4, "generations", r"workspace\.generations(\..+)?"),
    # Comments, decisions and favourites on generations; generations' selectors read its models.
    (4, "reviews", r"workspace\.reviews(\..+)?"),
    # The API's services speak for members through the same submission service as the web form.
    (4, "the API's services", r"workspace\.api(\..+)?"),
    # Share links and selection ZIPs: read generations' rows, never call their workflows.
    (4, "sharing", r"workspace\.sharing(\..+)?"),
    # Health and metrics read every app's state (rows, limiter, RQ registries) for operators.
    (4, "operations", r"workspace\.ops(\..+)?"),
    (3, "providers and billing", r"workspace\.(providers|billing)(\..+)?"),
    (2, "projects and accounts", r"workspace\.(projects|accounts)(\..+)?"),
    (1, "core", r"workspace(\.core(\..+)?|\.env|\.settings)?"),
]
# The simulator is a program of its own (a fake provider): it imports nothing of the app, and
# only the web-and-commands layer (``up`` starts it) may import it.
ISOLATED = r"workspace\.simulator(\..+)?"
# ... except the provider registry, which says which simulated API stands in for each provider
# and where it is mounted (Django-free data; the registry names the simulator only as text).
SIMULATOR_READS = r"workspace\.providers\.(registry|spec)"
# An app's models are importable from any layer: rows are data, and each model owns its
# one-row rules (billing's services read Generation rows to reserve and settle their cost).
# Cycles through them still fail.
MODELS = r"workspace\.\w+\.models"
# Jobs are thin wrappers: each imports its service inside the job body.
JOBS = r"workspace\.\w+\.jobs"


@dataclass(frozen=True)
class Import:
    source: str  # module that imports
    target: str  # module imported
    line: int
    lazy: bool  # inside a function body

    def where(self) -> str:
        return f"{self.source.replace('.', '/')}.py:{self.line} imports {self.target}"


def workspace_sources(root: Path = ROOT) -> dict[str, str]:
    """Module name → source text of every module under workspace/ (migrations excepted)."""
    sources: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        sources[".".join(parts)] = path.read_text()
    return sources


def _imports_of(module: str, source: str, known: set[str], is_package: bool) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - (child.level - 1)]
                    base = ".".join([*package, base] if base else package)
                # "from package import module" imports that module; otherwise the names are
                # attributes of ``base``.
                names = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in child.names
                ]
            for name in names:
                target = name
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    found.append(Import(module, target, child.lineno, lazy))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def import_graph(sources: dict[str, str], packages: set[str] | None = None) -> list[Import]:
    """Every import between the given modules, the jobs' lazy imports of services left out."""
    known = set(sources)
    packages = packages if packages is not None else {m for m in known if _is_package(m, known)}
    edges: list[Import] = []
    for module, source in sources.items():
        for edge in _imports_of(module, source, known, module in packages):
            if edge.lazy and re.fullmatch(JOBS, module):
                continue  # a job body importing its service: the one permitted lazy import
            if edge.target in packages and sources[edge.target].strip() == "":
                continue  # an empty package __init__ carries no dependency
            edges.append(edge)
    return edges


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def layer_of(module: str) -> tuple[int, str] | None:
    for rank, name, pattern in LAYERS:
        if re.fullmatch(pattern, module):
            return rank, name
    return None


def layer_violations(edges: list[Import]) -> list[str]:
    problems: list[str] = []
    for edge in edges:
        if re.fullmatch(ISOLATED, edge.source) or re.fullmatch(ISOLATED, edge.target):
            inside = re.fullmatch(ISOLATED, edge.source) and re.fullmatch(ISOLATED, edge.target)
            source_layer = layer_of(edge.source)
            from_top = source_layer is not None and source_layer[0] == LAYERS[0][0]
            reads_registry = re.fullmatch(ISOLATED, edge.source) and re.fullmatch(
                SIMULATOR_READS, edge.target
            )
            if (
                not inside
                and not reads_registry
                and not (from_top and re.fullmatch(ISOLATED, edge.target))
            ):
                problems.append(f"{edge.where()}: the simulator and the app stay apart")
            continue
        source, target = layer_of(edge.source), layer_of(edge.target)
        for module, layer in ((edge.source, source), (edge.target, target)):
            if layer is None:
                problems.append(f"{edge.where()}: {module} has no layer; add it to LAYERS")
        if source is None or target is None or re.fullmatch(MODELS, edge.target):
            continue
        if target[0] > source[0]:
            problems.append(
                f"{edge.where()}: {source[1]} (layer {source[0]}) must not import "
                f"{target[1]} (layer {target[0]})"
            )
    return problems


def cycles(edges: list[Import]) -> list[list[Import]]:
    """One cycle (as the imports that close it) per strongly connected group of modules."""
    graph: dict[str, dict[str, Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found: list[list[Import]] = []
    for group in groups:
        start = min(group)
        # Breadth-first inside the group from ``start`` back to itself: the shortest loop.
        paths: dict[str, list[Import]] = {start: []}
        frontier = [start]
        loop: list[Import] | None = None
        while frontier and loop is None:
            following: list[str] = []
            for node in frontier:
                for successor, edge in sorted(graph[node].items()):
                    if successor not in group:
                        continue
                    if successor == start:
                        loop = [*paths[node], edge]
                        break
                    if successor not in paths:
                        paths[successor] = [*paths[node], edge]
                        following.append(successor)
                if loop is not None:
                    break
            frontier = following
        assert loop is not None
        found.append(loop)
    return found


def describe_cycles(found: list[list[Import]]) -> list[str]:
    return [
        " → ".join([loop[0].source, *(e.target for e in loop)])
        + ": "
        + "; ".join(e.where() for e in loop)
        for loop in found
    ]


# --- The workspace itself ---------------------------------------------------------------------


def test_the_workspace_has_no_import_cycle() -> None:
    found = cycles(import_graph(workspace_sources()))
    assert not found, "Import cycles:\n" + "\n".join(describe_cycles(found))


def test_every_import_points_down_the_layers() -> None:
    problems = layer_violations(import_graph(workspace_sources()))
    assert not problems, "Imports against the layers:\n" + "\n".join(problems)


def test_every_module_has_a_layer() -> None:
    lost = [m for m in workspace_sources() if layer_of(m) is None and not re.fullmatch(ISOLATED, m)]
    assert not lost, f"Modules with no layer (add them to LAYERS): {lost}"


def test_the_graph_sees_the_generation_stages() -> None:
    # The checks above are only worth something if the graph is the real one.
    edges = {(e.source, e.target) for e in import_graph(workspace_sources())}
    assert ("workspace.generations.dispatch", "workspace.generations.sending") in edges
    assert ("workspace.generations.lanes", "workspace.generations.jobs") in edges
    assert ("workspace.billing.services", "workspace.generations.models") in edges
    # Versions (stack heads, picks) sit above submission, which keeps the head as it submits.
    assert ("workspace.generations.submission", "workspace.generations.versions") in edges
    assert not any(source == "workspace.generations.jobs" for source, _ in edges)
    # Characters: a generations stage of its own (docs/architecture.md), enqueuing its job and
    # calling the providers layer, shown by the web layer's template tags.
    assert ("workspace.generations.characters", "workspace.generations.jobs") in edges
    assert ("workspace.generations.characters", "workspace.providers.services") in edges
    assert (
        "workspace.generations.templatetags.character_tags",
        "workspace.generations.characters",
    ) in edges


# --- The checker on small made-up graphs ------------------------------------------------------


def test_a_cycle_is_found_and_named_even_through_a_lazy_import() -> None:
    sources = {
        "workspace": "",
        "workspace.providers": "",
        "workspace.generations": "",
        "workspace.providers.services": (
            "def resume():\n    from workspace.generations.lanes import kick\n    kick()\n"
        ),
        "workspace.generations.lanes": "from workspace.providers import services\n",
    }
    [loop] = cycles(import_graph(sources))
    [text] = describe_cycles([loop])
    assert "workspace/providers/services.py:2 imports workspace.generations.lanes" in text
    assert "workspace/generations/lanes.py:1 imports workspace.providers.services" in text


def test_an_import_up_the_layers_is_named() -> None:
    sources = {
        "workspace.providers.webhooks": "from workspace.generations.following import check\n",
        "workspace.generations.following": "from workspace.providers.models import Channel\n",
        "workspace.providers.models": "",
    }
    problems = layer_violations(import_graph(sources, packages=set()))
    assert problems == [
        "workspace/providers/webhooks.py:1 imports workspace.generations.following: providers "
        "and billing (layer 3) must not import generations (layer 4)"
    ]


def test_models_may_be_read_from_below_but_services_may_not() -> None:
    sources = {
        "workspace.billing.services": (
            "from workspace.generations.models import Generation\n"
            "from workspace.generations.submission import generation_submit\n"
        ),
        "workspace.generations.models": "",
        "workspace.generations.submission": "",
    }
    problems = layer_violations(import_graph(sources, packages=set()))
    assert len(problems) == 1 and "imports workspace.generations.submission" in problems[0]


def test_only_a_jobs_body_may_import_its_service_lazily() -> None:
    lazy = "def run_job(pk):\n    from workspace.generations.sending import send\n    send(pk)\n"
    sources = {
        "workspace.generations.jobs": lazy,
        "workspace.generations.sending": "from workspace.generations import jobs\n",
        "workspace.generations.other": lazy,
        "workspace.generations": "",
    }
    edges = import_graph(sources)
    assert {(e.source, e.target, e.lazy) for e in edges} == {
        ("workspace.generations.sending", "workspace.generations.jobs", False),
        ("workspace.generations.other", "workspace.generations.sending", True),
    }
    # The same lazy import at module level in jobs would close a cycle.
    sources["workspace.generations.jobs"] = "from workspace.generations.sending import send\n"
    assert cycles(import_graph(sources))


def test_the_simulator_and_the_app_stay_apart() -> None:
    sources = {
        "workspace.simulator.server": (
            "from workspace.providers.catalog import CATALOG\n"
            "from workspace.providers.registry import PROVIDERS\n"
        ),
        "workspace.providers.catalog": "",
        "workspace.providers.registry": "",
        "workspace.providers.models": "from workspace.simulator import server\n",
        "workspace.core.management.commands.up": "from workspace.simulator import server\n",
        "workspace.simulator": "",
    }
    problems = layer_violations(import_graph(sources))
    # Only the provider registry may be read from the simulator, and the app below the top
    # layer may not import the simulator at all.
    assert problems == [
        "workspace/simulator/server.py:1 imports workspace.providers.catalog: the simulator and "
        "the app stay apart",
        "workspace/providers/models.py:1 imports workspace.simulator.server: the simulator and "
        "the app stay apart",
    ]
