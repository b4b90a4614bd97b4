"""The package's shape: no import cycles (imports inside functions count), no module a reader
must scroll for minutes, no class that does several jobs, and the terminal libraries only in
samplernn_cli/cli/."""

from __future__ import annotations

import ast
from pathlib import Path

import samplernn_cli

PACKAGE = Path(samplernn_cli.__file__).parent
# The limits are set by concern, not by line counts that happen to fit today:
# - a module is one concern a reader can take in at one sitting (the checkpoint format, the
#   training step, the schedule); past 500 lines it holds two;
MAX_MODULE_LINES = 500
# - a package is a list of concerns a reader can name at a glance: training/ is the session,
#   its start-up, the loop and the parts it runs (step, validation, schedule, rounds,
#   reporting), their state and torchrun; the run folder's concerns are run/'s. Past a dozen
#   modules a package has split concerns by length (training/ had 22 of them, six of 69 to 94
#   lines, and one iteration opened 11) or taken on another package's job;
MAX_PACKAGE_MODULES = 12
# - the top level holds what every layer shares (audio I/O, the quantizer, the distance,
#   errors, the entry points), one small module each: at most 20;
MAX_TOP_LEVEL_MODULES = 20
# - a class is one job. The largest that are one job (the run folder's names and files, the
# checkpoint reader, the trainer that sets a session up and runs its parts in order) take
# 120 to 180 lines with their docstrings; past 200 a class has taken on a second job, as
# the trainer had at 527 lines with nine.
MAX_CLASS_LINES = 200


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = (
                    module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                )
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    found = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def test_no_import_cycles() -> None:
    known = modules()
    graph = {module: imports(module, path, known) for module, path in known.items()}
    assert "samplernn_cli.training.session" in graph["samplernn_cli.cli.train"]
    # Depth-first search for a back edge.
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path, module, target]
            if target not in state and (cycle := visit(target, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle)


def test_no_module_is_too_long() -> None:
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules().items()}
    assert {m: n for m, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_no_package_has_too_many_modules() -> None:
    counts: dict[str, int] = {}
    for module, path in modules().items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        counts[package] = counts.get(package, 0) + 1
    assert counts["samplernn_cli.training"] >= 8  # the count is of what it should be
    assert counts.pop("samplernn_cli") <= MAX_TOP_LEVEL_MODULES
    assert {p: n for p, n in counts.items() if n > MAX_PACKAGE_MODULES} == {}


def test_no_class_is_too_long() -> None:
    lengths = {}
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lengths[f"{module}.{node.name}"] = (node.end_lineno or first) - first + 1
    assert {c: n for c, n in lengths.items() if n > MAX_CLASS_LINES} == {}


def test_only_the_command_line_imports_typer_or_rich() -> None:
    known = modules()
    users = set()
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            if any(name.split(".")[0] in ("typer", "rich") for name in names):
                users.add(module)
    assert users and all(module.startswith("samplernn_cli.cli.") for module in users), users
