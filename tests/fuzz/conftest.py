"""Fuzz suite fixtures: no process may be started, and the summary line with the timings."""
from __future__ import annotations

import os
import subprocess

import pytest

from .checks import STATS


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: generated corrupt/odd image files (tests/fuzz)")


@pytest.fixture
def no_subprocesses(monkeypatch):
    """Starting a process fails and is recorded; Pillow is told Ghostscript exists, as it would
    on a machine that has it, so an EPS that reached Pillow would try to run it."""
    from PIL import EpsImagePlugin
    started = []

    def refuse(*args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        raise AssertionError(f"a subprocess was started: {started[-1]!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    for name in ("posix_spawn", "posix_spawnp", "system", "fork", "execv", "execve"):
        monkeypatch.setattr(os, name, refuse, raising=False)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")
    return started


def pytest_terminal_summary(terminalreporter):
    if not STATS["files"] and not STATS["examples"]:
        return
    wall = (STATS["end"] or 0) - (STATS["start"] or 0)
    slow_s, slow_name = STATS["slowest"]
    terminalreporter.write_line(
        f"fuzz: {STATS['files']} generated files + {STATS['examples']} hypothesis examples; "
        f"{STATS['loaded']} loaded, {STATS['refused']} refused; load_image+load_thumbnail "
        f"{STATS['load_s']:.1f} s, suite wall {wall:.1f} s; slowest {slow_s:.2f} s ({slow_name})")
