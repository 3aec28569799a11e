"""The package's layering, checked on the real import graph (grimp parses every import statement,
including the ones inside functions):

- ``face2scene.models`` is a leaf: networks only (torch, diffusers), nothing else of face2scene;
- nothing but ``face2scene.cli`` imports ``face2scene.bench`` or ``face2scene.train`` (and those
  two do not import each other);
- ``face2scene`` never imports Qt or ``f2s_desktop``;
- no import cycles between face2scene's modules.

``test_the_checker_catches_forbidden_imports`` adds each kind of forbidden import to a copy of the
package and shows the check failing on it, so a broken checker cannot pass silently.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "face2scene"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "f2s_desktop")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layering_violations() -> list:
    """Every broken rule as one readable line (empty: the layering holds)."""
    g = grimp.build_graph("face2scene", include_external_packages=True)
    internal = {m for m in g.modules if _inside(m, "face2scene")}
    problems = []
    for m in sorted(internal):
        for dep in sorted(g.find_modules_directly_imported_by(m)):
            if _inside(m, "face2scene.models") and dep in internal and not _inside(dep, "face2scene.models"):
                problems.append(f"{m} imports {dep}: face2scene.models must import nothing above it")
            for upper in ("face2scene.bench", "face2scene.train"):
                if _inside(dep, upper) and not (_inside(m, "face2scene.cli") or _inside(m, upper)):
                    problems.append(f"{m} imports {dep}: only face2scene.cli may import {upper}")
            if dep.split(".")[0] in QT:
                problems.append(f"{m} imports {dep}: face2scene never imports Qt or the app")
    # cycles: strongly connected components of the module graph (Tarjan)
    edges = {m: [d for d in g.find_modules_directly_imported_by(m) if d in internal] for m in internal}
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(internal):
        if v not in index:
            visit(v)
    problems += [f"import cycle: {' <-> '.join(c)}" for c in comps]
    return problems


def test_the_layering_holds():
    problems = layering_violations()
    assert not problems, "\n".join(problems)


FORBIDDEN = {
    "models imports upward": ("models/fadex.py", "from ..types import DegradationEstimate"),
    "pipeline imports train": ("pipeline.py", "from .train import common"),
    "restorers import bench": ("restorers/classical.py", "from ..bench import default_data"),
    "bench imports train": ("bench/speed.py", "from ..train import common"),
    "Qt in the method": ("people.py", "from PySide6 import QtCore"),
    "a cycle": ("types.py", "from . import pipeline"),
}


def test_the_checker_catches_forbidden_imports(tmp_path):
    """Each forbidden import, added to a copy of the package, is reported (run in a fresh process
    on the copy, so the installed package is not touched)."""
    for name, (rel, line) in FORBIDDEN.items():
        root = tmp_path / name.replace(" ", "_")
        shutil.copytree(PACKAGE_DIR, root / "face2scene", ignore=shutil.ignore_patterns("weights", "__pycache__"))
        target = root / "face2scene" / rel
        target.write_text(target.read_text() + f"\n\ndef _injected():\n    {line}\n")
        code = (f"import sys, json; sys.path.insert(0, {str(root)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import test_layering as t; print(json.dumps(t.layering_violations()))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
        found = json.loads(out.stdout.strip().splitlines()[-1])
        assert found, f"{name}: the checker missed `{line}` in {rel}"
