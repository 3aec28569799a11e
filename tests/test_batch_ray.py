"""``face2scene batch --ray local``: the bytes ``face2scene restore`` writes, a re-run does
nothing, a corrupt photo fails alone, an actor killed mid-batch loses and doubles nothing.

12 real photos from shared/data (8 portraits of 4 people, 4 scenes) reduced to <= 320 px, two
people's references, ``--restorer classical``; where shared/data is absent (CI), 12 public-domain
photos that scikit-image ships (the astronaut portrait in 8 degraded variants, its mirrored copy
as the reference, 4 scenes), so the Ray tests run everywhere. Each Ray run starts its own local
cluster in a child process (the CLI, as a user runs it). Skipped without the ``ray`` extra.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.data")

from face2scene.cli import main as cli_main  # noqa: E402

from .conftest import SHARED_DATA  # noqa: E402
from .test_batch import _outputs, _reduced, _rows, _temps  # noqa: E402

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--restorer", "classical", "--seed", "3", "-q"]
RUN_TIMEOUT = 900  # a loaded 2-core CI machine: the cluster alone takes ~20 s to start


def _public_domain_album(root: Path) -> dict:
    """Without shared/data: scikit-image's public-domain photos (see the module docstring)."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from face2scene.degrade import degrade
    from face2scene.samples import load_sample

    def save(rgb, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(np.ascontiguousarray(rgb))
        im.thumbnail((320, 320))
        im.save(dst, quality=92) if dst.suffix == ".jpg" else im.save(dst)

    src = root / "photos"
    face = load_sample()
    for k in range(8):  # crops and degradations of one portrait: 8 different files, one person
        crop = face[8 * k:, 4 * k: face.shape[1] - 4 * k]
        save(degrade(crop, "mild", seed=k)[0], src / "people" / f"astronaut_{k}.jpg")
    for name in ("coffee", "chelsea", "rocket", "immunohistochemistry"):
        save(getattr(skdata, name)(), src / "scenes" / f"{name}.png")
    save(face[:, ::-1], root / "refs" / "astronaut" / "mirrored.jpg")
    return {"astronaut": ["refs/astronaut"]}


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    src = root / "photos"
    bad = root / "bad"
    bad.mkdir()
    (bad / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    people = root / "people.json"
    if not (SHARED_DATA / "identities").is_dir():
        people.write_text(json.dumps(_public_domain_album(root)))
        photos = sorted(src.rglob("*.*"))
        assert len(photos) == 12
        return {"root": root, "src": src, "bad": bad, "people": people, "photos": photos}
    shared_data = SHARED_DATA
    ids = shared_data / "identities"
    for person in ("angelina_jolie", "jennifer_aniston", "matt_damon", "george_clooney"):
        for p in sorted((ids / person).glob("*.jpg"))[-2:]:  # the references are the first ones
            _reduced(p, src / "people" / f"{person}_{p.stem}.jpg", 320)
    for p in sorted((shared_data / "scenes").glob("*.png"))[:4]:
        _reduced(p, src / "scenes" / p.name, 320)
    refs = {}
    for person in ("angelina_jolie", "jennifer_aniston"):
        for p in sorted((ids / person).glob("*.jpg"))[:2]:
            _reduced(p, root / "refs" / person / p.name, 320)
        refs[person] = [f"refs/{person}"]
    people.write_text(json.dumps(refs))
    photos = sorted(src.rglob("*.*"))
    assert len(photos) == 12
    return {"root": root, "src": src, "bad": bad, "people": people, "photos": photos}


def _batch(args, script=None) -> subprocess.Popen:
    """``face2scene batch ARGS`` in a child process (its own session: the cluster goes with it);
    ``script``: a Python file run instead of ``-m face2scene``, with the same arguments."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [str(script)] if script else ["-m", "face2scene"]
    return subprocess.Popen([sys.executable, *cmd, "batch", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen) -> tuple:
    """(stdout, stderr) once the batch ends; a batch still running on the way out is killed with
    its local cluster."""
    try:
        return proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _workers_done(dst: Path) -> set:
    """The pids of the workers that restored the photos done so far."""
    if not (dst / "manifest.sqlite3").exists():
        return set()
    db = sqlite3.connect(f"file:{dst / 'manifest.sqlite3'}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT worker FROM items WHERE status='done'")}
    except sqlite3.OperationalError:  # the batch is still creating it
        return set()
    finally:
        db.close()


@pytest.fixture(scope="module")
def ray_run(album):
    """The album and a corrupt file, 2 actors on a local cluster."""
    dst = album["root"] / "out"
    proc = _batch([str(album["src"]), str(album["bad"]), "-o", str(dst), "--ray", "local", "--workers", "2",
                   "--people", str(album["people"]), *COMMON])
    out, err = _wait(proc)
    return proc.returncode, out, err, dst


def test_ray_restores_everything_and_fails_the_corrupt_photo_alone(album, ray_run):
    rc, out, err, dst = ray_run
    assert rc == 1, err  # 1: one input failed
    rows = {Path(r[0]).name: r for r in _rows(dst)}
    assert len(rows) == 13
    assert rows["broken.jpg"][1] == "failed" and "\n" not in rows["broken.jpg"][4], rows["broken.jpg"]
    done = [r for n, r in rows.items() if n != "broken.jpg"]
    assert all(r[1] == "done" for r in done), [r for r in done if r[1] != "done"]
    assert len(_outputs(dst)) == 12 and not _temps(dst)
    assert "ray (local)" in out and "2 worker(s)" in out, out
    report = json.loads((dst / "batch_report.json").read_text())
    assert report["engine"] == "ray (local)" and report["done"] == 12 and report["failed"] == 1
    assert len(report["peak_rss_mb"]) == 2  # two actors, each restored photos


def test_ray_writes_the_bytes_of_face2scene_restore(album, ray_run, tmp_path):
    _, _, _, dst = ray_run
    ref_args = [a for person in json.loads(album["people"].read_text())
                for a in ("--ref", f"{person}={album['root'] / 'refs' / person}")]
    assert cli_main(["restore", *map(str, album["photos"]), "-o", str(tmp_path), *ref_args, *COMMON]) == 0
    for p in album["photos"]:
        ours = dst / "photos" / p.parent.name / f"{p.stem}.png"
        assert ours.read_bytes() == (tmp_path / f"{p.stem}_restored.png").read_bytes(), p.name


def test_ray_rerun_does_nothing(album, ray_run, capfd):
    _, _, _, dst = ray_run
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.suffix in (".png", ".json")
              and p.name != "batch_report.json"}
    capfd.readouterr()
    rc = cli_main(["batch", str(album["src"]), str(album["bad"]), "-o", str(dst), "--ray", "local",
                   "--workers", "2", "--people", str(album["people"]), *COMMON])
    err = capfd.readouterr().err
    assert rc == 1 and "0 to do" in err, err  # the corrupt photo stands failed
    assert {p: p.stat().st_mtime_ns for p in before} == before
    import ray
    assert not ray.is_initialized()  # nothing to do: no cluster started (in this process)


def _descendants(pid: int) -> list:
    """Processes under ``pid`` (Linux /proc): (pid, cmdline)."""
    parent = {}
    cmd = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        for c, pp in parent.items():
            if pp == p:
                found.append((c, cmd.get(c, "")))
                frontier.append(c)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the actor processes in /proc")
def test_an_actor_killed_mid_batch_loses_and_doubles_nothing(album, ray_run):
    _, _, _, reference = ray_run
    dst = album["root"] / "killed"
    proc = _batch([str(album["src"]), "-o", str(dst), "--ray", "local", "--workers", "2",
                   "--people", str(album["people"]), *COMMON])
    killed = None
    deadline = time.time() + RUN_TIMEOUT
    while time.time() < deadline and proc.poll() is None:
        busy = _workers_done(dst)  # an actor that has restored a photo has more in flight
        actors = [p for p, c in _descendants(proc.pid) if "_Restorer" in c and p in busy]
        if actors:
            killed = actors[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.1)
    done_at_kill = sum(r[1] == "done" for r in _rows(dst)) if killed else None
    _, err = _wait(proc)
    assert killed is not None, "no actor found to kill before the batch ended"
    assert proc.returncode == 0, err
    assert done_at_kill < 12, "the batch was over before the kill"
    rows = _rows(dst)
    assert len(rows) == 12 and all(r[1] == "done" for r in rows), rows
    outs = _outputs(dst)
    assert len(outs) == 12 and not any("-2." in o for o in outs) and not _temps(dst)  # nothing doubled
    assert sorted(Path(r[3]).relative_to(dst).as_posix() for r in rows) == outs
    for o in outs:  # nothing half-written, nothing different: the bytes of the undisturbed run
        assert (dst / o).read_bytes() == (reference / o).read_bytes(), o
    report = json.loads((dst / "batch_report.json").read_text())
    # the killed actor came back as a new process and restored its photos (Ray retries an actor's
    # tasks on the same actor, restarted): three pids, the killed one among them
    pids = {int(k) for k in report["peak_rss_mb"]}
    assert len(pids) >= 3 and killed in pids, (killed, report["peak_rss_mb"])
    # the photo it was restoring was started again, and the manifest and the summary say so
    assert report["retries"] >= 1 and report["retries"] == sum(1 for r in rows if r[2] > 1), report["retries"]
    assert all(1 <= r[2] <= 3 for r in rows)


CRASHY = '''
import os, sys
import face2scene.batch_ray as br


class Crashy(br._Restorer):
    """Dies (the whole actor process) on every photo whose name has "crash" in it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        real = br.restore_one

        def restore_one(pipe, people, inp, out, report, cancel=None):
            if "crash" in inp.name:
                os._exit(1)
            return real(pipe, people, inp, out, report, cancel)
        br.restore_one = restore_one  # in the actor's process


br._Restorer = Crashy
from face2scene.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_a_photo_that_kills_its_actor_every_time_fails_alone(tmp_path):
    """Needs no real photos: noise, and one photo whose restoration kills the actor process."""
    import numpy as np
    from PIL import Image
    src = tmp_path / "in"
    src.mkdir()
    for k, name in enumerate(("a.png", "crash.png", "b.png")):
        Image.fromarray((np.random.default_rng(k).random((48, 64, 3)) * 255).astype(np.uint8)).save(src / name)
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY)
    dst = tmp_path / "out"
    proc = _batch([str(src), "-o", str(dst), "--ray", "local", "--workers", "1", "--restorer", "classical", "-q"],
                  script=script)
    _, err = _wait(proc)
    assert proc.returncode == 1, err
    rows = {Path(r[0]).name: r for r in _rows(dst)}
    assert rows["a.png"][1] == rows["b.png"][1] == "done", rows
    status, attempts, error = rows["crash.png"][1], rows["crash.png"][2], rows["crash.png"][4]
    assert status == "failed" and attempts == 3 and "worker died" in error and "\n" not in error, rows["crash.png"]
    assert _outputs(dst) == ["in/a.png", "in/b.png"] and not _temps(dst)
