"""The package's shape: small files, one folder per stage.

The import layering and the absence of cycles are checked by import-linter in
`make lint` (contracts in pyproject.toml); this checks what it cannot.
"""

from __future__ import annotations

from pathlib import Path

import casereport

PACKAGE = Path(casereport.__file__).resolve().parent
MAX_LINES = 800
STAGES = (
    "definitions",
    "state",
    "checks",
    "api",
    "emulator",
    "render",
    "notify",
    "engine",
    "publish",
)


def test_no_source_file_holds_more_than_800_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 40  # the walk found the package
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_each_stage_is_a_documented_subpackage() -> None:
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert packages == sorted(STAGES)
    overview = casereport.__doc__ or ""
    for stage in STAGES:
        assert f"{stage}/" in overview, f"the package docstring does not place {stage}/"
        assert (PACKAGE / stage / "__init__.py").read_text(encoding="utf-8").startswith('"""')
