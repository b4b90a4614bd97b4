"""The documentation: the command reference is the one the app generates, every relative link
in README.md, CHANGELOG.md and docs/ resolves (files and headings), README.md stays a short
front door, and README's commands are the ones CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
CI_SCRIPT = ROOT / ".ci" / "run"
REGENERATE = "typer samplernn_cli.cli.app utils docs --name samplernn --output docs/reference.md"
README_MAX_LINES = 400

DOCUMENTS = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _typer_command() -> list[str]:
    """The `typer` script of the environment running the tests (the venv's bin)."""
    script = Path(sys.executable).parent / ("typer.exe" if os.name == "nt" else "typer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "typer"]


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code spans."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _code_lines(text: str) -> list[str]:
    """Every line inside the fenced code blocks of a Markdown text, stripped."""
    return [
        line.strip() for block in FENCE.finditer(text) for line in block.group(0).splitlines()[1:-1]
    ]


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub makes for a Markdown file: lower case, punctuation dropped,
    spaces as hyphens, repeats numbered -1, -2, ..."""
    anchors: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def _ci_commands() -> list[str]:
    """The commands .ci/run runs from the creation of the virtual environment on."""
    lines = [line.strip() for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    start = next(i for i, line in enumerate(commands) if line.startswith("python3 -m venv"))
    return commands[start:]


def test_reference_is_what_the_app_generates(tmp_path: Path) -> None:
    generated = tmp_path / "reference.md"
    result = subprocess.run(
        [*_typer_command(), "samplernn_cli.cli.app", "utils", "docs", "--name", "samplernn",
         "--output", str(generated)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    checked_in = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert checked_in == generated.read_text(encoding="utf-8"), (
        "docs/reference.md differs from what the app generates; regenerate it from the "
        f"repository root with:\n    {REGENERATE}"
    )


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/"
    )


def test_readme_links_every_command_into_the_reference() -> None:
    commands = re.findall(r"^## `samplernn ([\w-]+)`", REFERENCE.read_text(encoding="utf-8"), re.M)
    assert commands, "docs/reference.md lists no commands"
    readme = README.read_text(encoding="utf-8")
    missing = [name for name in commands if f"reference.md#samplernn-{name}" not in readme]
    assert not missing, f"README.md's command table does not link: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(document.read_text(encoding="utf-8"))):
        if SCHEME.match(target):
            continue  # https:, mailto:, ...: not checked here
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"broken links in {document.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = _ci_commands()
    assert ci[-1] == "pytest", f".ci/run no longer ends with pytest: {ci}"
    code = _code_lines(README.read_text(encoding="utf-8"))
    assert " && ".join(ci) in code, (
        "README.md has no command line that runs exactly what .ci/run runs:\n    " + " && ".join(ci)
    )
    setup = " && ".join(ci[:2])  # the same virtual environment for a user's first run
    assert any(line.startswith(setup) and "samplernn train" in line for line in code), (
        f"README.md's first run does not start with .ci/run's setup: {setup}"
    )
