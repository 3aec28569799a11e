"""``face2scene batch``: same bytes as ``face2scene restore``, re-runs do nothing, a killed batch
resumes with every photo restored once, a corrupt photo fails alone.

The real-photo tests use 6 photos from shared/data reduced to 256 px (skipped without it); the
synthetic ones need nothing. Everything runs with ``--restorer classical``.
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

import numpy as np
import pytest
from PIL import Image

from face2scene.batch import BatchItem, MANIFEST_NAME, gather_inputs, plan_outputs, read_people_json
from face2scene.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--restorer", "classical", "--seed", "3", "-q"]


def _reduced(src: Path, dst: Path, side: int = 256) -> Path:
    im = Image.open(src).convert("RGB")
    im.thumbnail((side, side))
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.save(dst, quality=92) if dst.suffix == ".jpg" else im.save(dst)
    return dst


def _rows(dst: Path) -> list:
    db = sqlite3.connect(f"file:{dst / MANIFEST_NAME}?mode=ro", uri=True)
    try:
        return db.execute("SELECT input, status, attempts, output, error FROM items ORDER BY input").fetchall()
    finally:
        db.close()


def _temps(root: Path) -> list:
    return [p for p in root.rglob(".f2s-*.tmp")]


def _outputs(dst: Path) -> list:
    return sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png"))


@pytest.fixture(scope="module")
def album(tmp_path_factory, shared_data):
    """src/people (4 portraits) + src/scenes (2), references of two people, all <= 256 px."""
    root = tmp_path_factory.mktemp("batch")
    ids = shared_data / "identities"
    photos = [ids / "angelina_jolie" / "img11.jpg", ids / "angelina_jolie" / "img2.jpg",
              ids / "jennifer_aniston" / sorted(os.listdir(ids / "jennifer_aniston"))[-1],
              ids / "matt_damon" / sorted(os.listdir(ids / "matt_damon"))[0]]
    scenes = sorted((shared_data / "scenes").glob("*.png"))[:2]
    src = root / "src"
    for p in photos:
        _reduced(p, src / "people" / f"{p.parent.name}_{p.stem}.jpg")
    for p in scenes:
        _reduced(p, src / "scenes" / p.name)
    refs = {}
    for person, names in (("angelina", ["img1.jpg", "img10.jpg"]),
                          ("jennifer", sorted(os.listdir(ids / "jennifer_aniston"))[:2])):
        folder = "angelina_jolie" if person == "angelina" else "jennifer_aniston"
        for n in names:
            _reduced(ids / folder / n, root / "refs" / person / n)
        refs[person] = root / "refs" / person
    people_json = root / "people.json"
    people_json.write_text(json.dumps({k: [f"refs/{k}"] for k in refs}))  # relative to the JSON file
    ref_args = [a for k, v in refs.items() for a in ("--ref", f"{k}={v}")]
    return {"root": root, "src": src, "refs": ref_args, "people": people_json,
            "n": len(photos) + len(scenes)}


@pytest.fixture(scope="module")
def two_workers(album):
    """The whole album restored with 2 workers."""
    dst = album["root"] / "out2"
    rc = cli_main(["batch", str(album["src"]), "-o", str(dst), "--workers", "2", *album["refs"], *COMMON])
    return rc, dst


def test_two_workers_restore_everything(album, two_workers):
    rc, dst = two_workers
    assert rc == 0
    rows = _rows(dst)
    assert len(rows) == album["n"] and {r[1] for r in rows} == {"done"}
    assert len(_outputs(dst)) == album["n"] and not _temps(dst)
    for r in rows:  # the mirrored tree, a report next to each output
        out = Path(r[3])
        assert out.parent.relative_to(dst).parts[0] == "src" and out.with_suffix(".json").is_file()
    report = json.loads((dst / "batch_report.json").read_text())
    assert report["done"] == album["n"] and report["stage_means"]["total"] > 0


def test_same_bytes_as_restore_with_one_and_two_workers(album, two_workers, tmp_path):
    from face2scene.cli import main as f2s
    _, dst2 = two_workers
    picks = [album["src"] / "people" / "angelina_jolie_img11.jpg", sorted((album["src"] / "scenes").iterdir())[0]]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{p}\n" for p in picks))
    dst1 = tmp_path / "out1"
    assert cli_main(["batch", f"@{lst}", "-o", str(dst1), "--workers", "1", *album["refs"], *COMMON]) == 0
    for p in picks:
        ref = tmp_path / f"{p.stem}.restore.png"
        assert f2s(["restore", str(p), "-o", str(ref), *album["refs"], "--restorer", "classical",
                    "--seed", "3", "-q"]) == 0
        one = dst1 / f"{p.stem}.png"  # a file from a list goes to DST itself
        two = dst2 / "src" / p.parent.name / f"{p.stem}.png"
        assert one.read_bytes() == ref.read_bytes(), p.name
        assert two.read_bytes() == ref.read_bytes(), p.name


def test_rerun_does_nothing(album, two_workers, capfd):
    _, dst = two_workers
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.suffix in (".png", ".json")
              and p.name != "batch_report.json"}
    capfd.readouterr()
    # the same references given as a PEOPLE.json: the same settings, nothing to redo
    rc = cli_main(["batch", str(album["src"]), "-o", str(dst), "--workers", "2", "--people", str(album["people"]),
                         *COMMON])
    err = capfd.readouterr().err
    assert rc == 0 and "0 to do" in err, err
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # other settings: everything is redone
    assert read_people_json(album["people"]).keys() == {"angelina", "jennifer"}


def test_kill_9_then_resume_restores_each_photo_once(album):
    dst = album["root"] / "killed"
    cmd = [sys.executable, "-m", "face2scene", "batch", str(album["src"]), "-o", str(dst), "--workers", "1",
           "--people", str(album["people"]), *COMMON]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if (dst / MANIFEST_NAME).exists() and _outputs(dst):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = [r[0] for r in _rows(dst) if r[1] == "done"]
    assert len(done_before) < album["n"]
    time.sleep(1.0)  # the orphaned worker notices its driver is gone and leaves
    rc = cli_main(["batch", str(album["src"]), "-o", str(dst), "--resume", "--workers", "1",
                         "--people", str(album["people"]), *COMMON])
    assert rc == 0
    rows = _rows(dst)
    assert len(rows) == album["n"] and all(r[1] == "done" for r in rows)
    assert all(r[2] == 1 for r in rows if r[0] in done_before)  # done once: not redone by the resume
    outs = _outputs(dst)
    assert len(outs) == album["n"] and not any("-2." in o for o in outs)  # no duplicates
    assert sorted(Path(r[3]).relative_to(dst).as_posix() for r in rows) == outs
    assert not _temps(dst)


# -- synthetic: no data needed ----------------------------------------------------------------

def _noise(path: Path, seed: int, size=(64, 80)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_corrupt_photo_fails_alone_and_reruns_skip(tmp_path, capfd):
    src = tmp_path / "in"
    _noise(src / "a.png", 1)
    _noise(src / "sub" / "b.jpg", 2)
    (src / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    dst = tmp_path / "out"
    rc = cli_main(["batch", str(src), "-o", str(dst), "--restorer", "classical"])
    err = capfd.readouterr().err
    assert rc == 1
    rows = {Path(r[0]).name: r for r in _rows(dst)}
    assert rows["a.png"][1] == rows["b.jpg"][1] == "done"
    assert rows["broken.jpg"][1] == "failed" and "\n" not in rows["broken.jpg"][4]
    assert "broken.jpg" in err
    assert _outputs(dst) == ["in/a.png", "in/sub/b.png"]
    mtimes = {p: p.stat().st_mtime_ns for p in dst.rglob("*.png")}
    assert cli_main(["batch", str(src), "-o", str(dst), "--restorer", "classical"]) == 1  # still failed
    assert "0 to do" in capfd.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    # a changed input is redone; the fixed file is retried only when asked
    _noise(src / "a.png", 5)
    _noise(src / "sub" / "broken.jpg", 3)
    assert cli_main(["batch", str(src), "-o", str(dst), "--restorer", "classical", "--retry-failed"]) == 0
    assert "2 to do" in capfd.readouterr().err
    assert {Path(r[0]).name: r[1:3] for r in _rows(dst)} == {
        "a.png": ("done", 2), "b.jpg": ("done", 1), "broken.jpg": ("done", 2)}


def test_outputs_never_collide_nor_overwrite_inputs(tmp_path):
    src = tmp_path / "p"
    for rel in ("x.jpg", "x.png", "X.tif", "d/x.jpg", "x-2.png"):
        _noise(src / rel, 0, (8, 8))
    _noise(tmp_path / "batch_report.png", 0, (8, 8))
    # DST inside the source folder: never read back as input
    items = gather_inputs([str(src), str(src / "x.jpg"), str(tmp_path / "batch_report.png")], src / "out")
    assert len(items) == 6
    plan_outputs(items, src / "out", {})
    outs = [i.output for i in items]
    assert len({str(o).casefold() for o in outs}) == len(outs)
    assert not {str(o) for o in outs} & {str(i.input) for i in items}
    assert (src / "out" / "batch_report.json") not in [i.report for i in items]
    # an input the manifest knows keeps its output, whatever joins the batch
    again = [BatchItem(i.input, i.rel_dir) for i in reversed(items)]
    plan_outputs(again, src / "out", {i.key: str(i.output) for i in items})
    assert {i.key: i.output for i in again} == {i.key: i.output for i in items}
    with pytest.raises(ValueError, match="no such file"):
        gather_inputs([str(tmp_path / "missing")], tmp_path / "o")


def test_restore_options_are_shared_and_old_print_gives_restore_bytes(tmp_path):
    """`batch` takes every option of `restore` from the same definition; --old-print gives the same
    bytes as `restore --old-print`."""
    from face2scene.cli import build_parser
    ap = build_parser()
    sub = next(a for a in ap._actions if a.dest == "command").choices

    def opts(name):
        return {o for a in sub[name]._actions for o in a.option_strings}
    assert {"--old-print", "--print-tone", "--neutral-tone", "--upscale", "--seed"} <= opts("restore") - {
        "--report", "-o", "--output"} & opts("batch")
    assert opts("restore") - {"--report"} <= opts("batch")
    photo = _noise(tmp_path / "in" / "print.png", 7, (72, 96))
    args = ["--restorer", "classical", "--seed", "1", "--old-print", "--print-tone", "off", "-q"]
    assert cli_main(["batch", str(photo), "-o", str(tmp_path / "out"), *args]) == 0
    assert cli_main(["restore", str(photo), "-o", str(tmp_path / "r.png"), *args]) == 0
    assert (tmp_path / "out" / "print.png").read_bytes() == (tmp_path / "r.png").read_bytes()
    report = json.loads((tmp_path / "out" / "batch_report.json").read_text())
    assert report["settings"]["config"]["old_print"] is True and report["settings"]["config"]["print_tone"] == "off"


def test_threads_per_worker_are_capped(tmp_path):
    from face2scene.batch import default_threads, gather_inputs, run_batch
    from face2scene.pipeline import PipelineConfig
    assert default_threads(2, cores=16) == 8 and default_threads(3, cores=16) == 5
    assert default_threads(4, cores=2) == 1 and default_threads(1, cores=2) == 2
    for k in range(2):
        _noise(tmp_path / "in" / f"{k}.png", k)
    seen, before = [], os.environ.get("OPENBLAS_NUM_THREADS")
    s = run_batch(gather_inputs([str(tmp_path / "in")], tmp_path / "out"), tmp_path / "out",
                  PipelineConfig(restorer="classical"), workers=2, threads=1,
                  on_item=lambda item, res, k, n: seen.append(res.get("threads")))
    assert s.done == 2 and s.threads == 1
    for t in seen:
        assert t["cv2"] == 1 and t["torch"] in (None, 1), t
        if Path("/proc/self/environ").exists():
            assert t["blas_at_start"] == 1, t  # in the environment the worker was started with
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before  # the driver's own environment is restored
    with pytest.raises(ValueError, match="threads"):
        run_batch([], tmp_path / "o2", PipelineConfig(restorer="classical"), threads=0)


def test_ray_option_without_ray_is_a_clear_error(tmp_path, monkeypatch, capfd):
    import face2scene.batch_ray as batch_ray
    monkeypatch.setattr(batch_ray, "ray_available", lambda: False)
    photo = _noise(tmp_path / "a.png", 1)
    assert cli_main(["batch", str(photo), "-o", str(tmp_path / "out"), "--ray", "local"]) == 2
    err = capfd.readouterr().err
    assert "face2scene[ray]" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # refused before any work
    with pytest.raises(ValueError):
        batch_ray.RayEngine("local", threads=0)


def test_bench_batch_writes_its_table_and_json(tmp_path, capsys):
    """`face2scene bench batch` on 2 noise photos, 1 worker, no Ray: a row per run, in the JSON."""
    data = tmp_path / "nodata"  # no development set: noise photos
    data.mkdir()
    assert cli_main(["bench", "batch", "--photos", "2", "--side", "48", "--workers", "1", "--ray", "none",
                     "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "peak MB per worker" in out and "processes" in out
    res = json.loads((tmp_path / "o" / "batch.json").read_text())
    (run,) = res["runs"]
    assert run["engine"] == "processes" and run["workers"] == 1 and run["photos"] == 2 and run["failed"] == 0
    assert run["photos_per_min"] > 0 and len(run["peak_rss_mb_per_worker"]) == 1
    assert run["peak_rss_mb_per_worker"][0] > 50  # a worker with numpy, OpenCV and dlib loaded
    assert cli_main(["bench", "batch", "--workers", "0", "--out", str(tmp_path / "o")]) == 2
