"""Kill windows (issue 14, item 10): the real job code (library, queue, files, jobs.run_restore_job
with the fake engine) runs in a child process that SIGKILLs itself at one step of finishing a job;
a restart (Library.recover + run_queue) must leave every job done exactly once, versions numbered
1..n without gaps, no orphan or temp file, and an intact database. POSIX only (SIGKILL)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from f2s_desktop.engine import EngineSettings, load_rgb
from f2s_desktop.jobs import run_queue
from f2s_desktop.library import Library

from .fakes import FakeEngine, face_dict, make_photo

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

REPO = Path(__file__).resolve().parents[2]

# the child: the same library (FACE2SCENE_HOME), the real run_queue, killed at step argv[1], its
# argv[2]-th occurrence. "during-write" kills inside an atomic write (at its fsync, so the temp
# file exists and holds data); the other steps are jobs.CRASH_HOOK's names.
CHILD = r"""
import os, signal, sys
from f2s_desktop import jobs
from f2s_desktop.engine import load_rgb
from f2s_desktop.library import Library
from tests.desktop.fakes import FakeEngine, face_dict

step, nth = sys.argv[1], int(sys.argv[2])
seen = [0]

def hit():
    seen[0] += 1
    if seen[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

if step == "during-write":
    real_fsync = os.fsync
    def fsync(fd):
        hit()
        real_fsync(fd)
    os.fsync = fsync
else:
    jobs.CRASH_HOOK = lambda name: hit() if name == step else None

lib = Library()
faces = {FakeEngine.key(load_rgb(p.path)): [face_dict(0)] for p in lib.photos.all()}
jobs.run_queue(lib, FakeEngine(faces))
sys.exit(3)  # not killed: the test's step never came
"""


def _engine(lib):
    return FakeEngine({FakeEngine.key(load_rgb(p.path)): [face_dict(0)] for p in lib.photos.all()})


def _leftover_temps(lib):
    return [p for root in (lib.paths.data, lib.paths.cache) for p in root.rglob("*.tmp")]


# (step, occurrence, orphan files the kill leaves): a job writes its face crop, then its version
# file (2 fsyncs), then commits; the second round's first job is photo 1's, its second photo 2's
@pytest.mark.parametrize("step, nth, orphans", [
    ("claimed", 2, 0),          # before anything of job 2
    ("restored", 1, 0),         # restored in memory, nothing written
    ("during-write", 1, 0),     # inside the crop's atomic write: a temp file only
    ("crops-written", 2, 1),    # the crop written, not the version file
    ("during-write", 2, 1),     # inside the version file's write, the crop already there
    ("file-written", 1, 2),     # both files written, the row not committed
    ("committed", 2, 0),        # after the transaction: nothing left to redo
])
def test_kill_at_each_step_then_restart(tmp_path, step, nth, orphans):
    lib = Library()
    ids = lib.photos.import_files([make_photo(tmp_path / f"p{i}.png", seed=i) for i in range(2)]).added
    settings = EngineSettings().to_json()
    lib.queue.enqueue(ids, settings)
    assert run_queue(lib, _engine(lib)) == 2                # version 1 of each, made normally
    lib.queue.enqueue(ids, settings)                          # the second round is the one killed
    lib.close()

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", CHILD, step, str(nth)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    lib = Library()
    before = {j.id: j.state for j in lib.queue.jobs()}
    rep = lib.recover()
    assert rep["orphans"] == orphans        # files written but never recorded: removed
    assert rep["temps"] == (1 if step == "during-write" else 0)
    assert rep["requeued"] == (0 if step == "committed" else 1)
    run_queue(lib, _engine(lib))

    jobs = lib.queue.jobs()
    assert len(jobs) == 4 and all(j.state == "done" for j in jobs), [(j.id, before[j.id], j.state) for j in jobs]
    assert len({j.version_id for j in jobs}) == 4              # every job done exactly once
    for pid in ids:
        vs = lib.versions.for_photo(pid)
        assert [v.number for v in vs] == [1, 2]                 # no gap, no number skipped
        files = sorted(f.name for f in lib.files.version_dir(pid).iterdir())
        assert files == ["v001.png", "v001_face0.png", "v002.png", "v002_face0.png"]  # no orphan
    assert _leftover_temps(lib) == []
    assert lib.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lib.close()
