"""``face2scene bench faces`` runs, leaves each photo out of its own references, and writes its
table and JSON (numbers are not asserted: tests assert behaviour, the bench measures)."""
from __future__ import annotations

import json

import pytest

from face2scene.cli import main


@pytest.mark.data
def test_bench_faces_leaves_each_photo_out(shared_data, tmp_path, capsys):
    assert main(["bench", "faces", "--face-photos", "4", "--max-side", "384", "--data", str(shared_data),
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "detection %" in out and "match %" in out and "found by:" in out
    data = json.loads((tmp_path / "faces.json").read_text())
    rows, s = data["photos"], data["summary"]
    assert len(rows) == s["photos"] == 4 and len({r["person"] for r in rows}) == 1  # the first person's photos
    assert s["found"] == sum(r["found"] for r in rows)
    assert s["detection_rate"] == pytest.approx(s["found"] / 4)
    for r in rows:
        assert r["cpu_seconds"] >= 0 and r["size"][0] <= 384 and r["size"][1] <= 384
        if r["found"]:
            assert r["detector"] is not None
            # its 3 other photos are the person's album (never the photo itself)
            assert r.get("references", 0) <= 3
    assert s["missed"] == [r["photo"] for r in rows if not r["found"]]


def test_bench_faces_without_data_says_so(tmp_path, capsys, monkeypatch):
    import face2scene.bench.common as b
    monkeypatch.setattr(b, "default_data", lambda: None)
    assert main(["bench", "faces", "--out", str(tmp_path / "o")]) == 1
    assert "no identities folder" in capsys.readouterr().err
