"""``face2scene bench faces``: does detection find each identity photo's face, and does the one
:class:`~face2scene.people.Matcher` name the right person from that person's *other* photos?

Every photo of ``identities/<person>/`` is reduced to ``--max-side`` (optionally rotated by
``--rotate`` degrees, as a scan put on the glass sideways would be, and degraded by ``--preset``
as a query only, its references staying clean), its faces are detected with
embeddings, and its main face (the largest) is matched against a :class:`PeopleIndex` built from
all the other photos of all the people (leave one out: the photo itself is never a reference).
Detection of the reference photos is done once and reused, so the index is exactly what the
pipeline builds from those photos. Prints a table, writes ``faces.json``. Not a test.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .common import fmt, print_table


class _OnceBackend:
    """Wraps a face backend so each reference image (by identity of its array) is detected once;
    everything else is the wrapped backend's."""

    def __init__(self, backend) -> None:
        self._b = backend
        self._seen: Dict[int, tuple] = {}

    def __getattr__(self, name):
        return getattr(self._b, name)

    def remember(self, rgb, faces) -> None:
        self._seen[id(rgb)] = (rgb, faces)

    def detect(self, rgb, with_embeddings: bool = True):
        seen = self._seen.get(id(rgb))
        if seen is not None and seen[0] is rgb:  # the very array (ids of freed arrays get reused)
            return seen[1]
        return self._b.detect(rgb, with_embeddings=with_embeddings)


def _photos(data: Path) -> List[tuple]:
    return [(p.name, f) for p in sorted((data / "identities").iterdir()) if p.is_dir()
            for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".")]


def _reduced(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` itself when it fits ``max_side`` (0: any size), else an area-reduced copy (the
    rounding PeopleIndex uses for its references)."""
    import cv2
    h, w = rgb.shape[:2]
    f = 1.0 if max_side <= 0 else min(1.0, max_side / max(h, w))
    return rgb if f >= 1.0 else cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)


def _prepare(path: Path, max_side: int, rotate: int) -> np.ndarray:
    from ..io import load_image
    rgb = _reduced(load_image(path).rgb, max_side)
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotate // 90) % 4)) if rotate else rgb


def bench_faces(data: Path, max_side: int = 1024, rotate: int = 0, limit: Optional[int] = None,
                backend=None, scenes: int = 0, preset: Optional[str] = None, seed: int = 0) -> Dict:
    """Detection and leave-one-out matching over the identity photos; returns the JSON dict."""
    from ..faces import get_face_backend
    from ..people import REF_MAX_SIDE, PeopleIndex
    from ..types import RefImage

    if rotate % 90:
        raise ValueError(f"--rotate must be a multiple of 90 degrees, not {rotate}")
    backend = backend or get_face_backend("dlib")
    photos = _photos(Path(data))[:limit] if limit else _photos(Path(data))
    if not photos:
        raise ValueError(f"no identity photos under {Path(data) / 'identities'}")
    rows, images, query_faces = [], {}, {}
    for k, (person, path) in enumerate(photos):
        rgb = _prepare(path, max_side, rotate)
        query = rgb
        if preset:  # the photo degraded as a query; it stays clean as a reference
            from ..degrade import degrade
            query, _ = degrade(rgb, preset, seed=seed + k)
        t, c = time.perf_counter(), time.process_time()
        faces = backend.detect(query)
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        main = faces[0] if faces else None
        label = f"{person}/{path.name}"
        query_faces[label] = faces
        images[label] = (person, rgb, faces if query is rgb else None)
        rows.append({"photo": label, "person": person, "size": [int(rgb.shape[1]), int(rgb.shape[0])],
                     "faces": len(faces), "found": main is not None,
                     "detector": None if main is None else getattr(main, "detector", None),
                     "main_box_px": None if main is None else round(float(main.box[2] - main.box[0]), 1),
                     "seconds": round(dt, 3), "cpu_seconds": round(cpu, 3)})
        print(f"[{k + 1}/{len(photos)}] {label}: {len(faces)} face(s) in {dt:.2f} s ({cpu:.2f} s CPU)"
              + ("" if main is None else f" (main {rows[-1]['main_box_px']:.0f} px, {rows[-1]['detector']})"),
              flush=True)

    once = _OnceBackend(backend)
    # Each photo, as a reference, is what PeopleIndex analyses (reduced to REF_MAX_SIDE): detect
    # it once here, so the leave-one-out indexes below do not detect it again.
    refs_of: Dict[str, np.ndarray] = {}
    for label, (_, rgb, faces) in images.items():
        ref = _reduced(rgb, REF_MAX_SIDE)
        once.remember(ref, faces if ref is rgb and faces is not None else backend.detect(ref))
        refs_of[label] = ref
    for row in rows:
        if not row["found"]:
            continue
        person = row["person"]
        faces = query_faces[row["photo"]]
        refs = {}
        for label, (p, _, _) in images.items():
            if label != row["photo"]:
                refs.setdefault(p, []).append(RefImage(refs_of[label], label))
        index = PeopleIndex.build(once, refs)
        main = faces[0]
        if main.embedding is None:
            row.update(matched=None, right=False, distance=None, note=main.reason or "no embedding")
            continue
        who, dist, conf = index.match(main)
        row.update(matched=who, right=who == person, distance=None if dist is None else round(dist, 4),
                   confidence=None if conf is None else round(conf, 3),
                   references=len(index.people[person].refs) if person in index.people else 0,
                   distance_own=None if index.distance_to(main, person) is None
                   else round(index.distance_to(main, person), 4))
    result = summarise(rows, max_side=max_side, rotate=rotate, backend=getattr(backend, "name", "?"),
                       preset=preset, seed=seed)
    if scenes:
        result["scenes"] = scene_detections(Path(data), backend, scenes, max_side)
    return result


def scene_detections(data: Path, backend, n: int, max_side: int) -> Dict:
    """Faces found on the first ``n`` ``scenes/sunhays80_*`` photos (landscapes, buildings: most
    show no one, so what is found there is mostly false positives) and what looking cost."""
    files = sorted((data / "scenes").glob("sunhays80_*"))[:n]
    rows = []
    for path in files:
        rgb = _prepare(path, max_side, 0)
        t, c = time.perf_counter(), time.process_time()
        faces = backend.detect(rgb, with_embeddings=False)
        rows.append({"photo": path.name, "faces": len(faces), "detectors": [f.detector for f in faces],
                     "boxes_px": [round(float(f.box[2] - f.box[0])) for f in faces],
                     "seconds": round(time.perf_counter() - t, 3), "cpu_seconds": round(time.process_time() - c, 3)})
        print(f"scene {path.name}: {len(faces)} face(s), {rows[-1]['cpu_seconds']:.2f} s CPU", flush=True)
    cpu = np.array([r["cpu_seconds"] for r in rows], float)
    return {"photos": len(rows), "with_faces": sum(r["faces"] > 0 for r in rows),
            "faces": sum(r["faces"] for r in rows),
            "cpu_seconds_per_photo": {"median": float(np.median(cpu)), "mean": float(cpu.mean()),
                                      "max": float(cpu.max())} if len(cpu) else None,
            "rows": rows}


def summarise(rows: List[Dict], **meta) -> Dict:
    found = [r for r in rows if r["found"]]
    right = [r for r in found if r.get("right")]
    secs = np.array([r["seconds"] for r in rows], float)
    cpu = np.array([r.get("cpu_seconds", np.nan) for r in rows], float)
    by_det: Dict[str, int] = {}
    for r in found:
        by_det[str(r["detector"])] = by_det.get(str(r["detector"]), 0) + 1
    summary = {
        "photos": len(rows), "found": len(found), "detection_rate": len(found) / max(1, len(rows)),
        "matched_right": len(right), "match_rate": len(right) / max(1, len(found)),
        "missed": [r["photo"] for r in rows if not r["found"]],
        "mismatched": [f"{r['photo']} -> {r.get('matched')} (d {fmt(r.get('distance'))}, own {fmt(r.get('distance_own'))})"
                       for r in found if not r.get('right')],
        "by_detector": by_det,
        "seconds_per_photo": {"median": float(np.median(secs)), "mean": float(secs.mean()),
                              "max": float(secs.max())} if len(secs) else None,
        "cpu_seconds_per_photo": {"median": float(np.median(cpu)), "mean": float(cpu.mean()),
                                  "max": float(cpu.max())} if len(cpu) else None,
    }
    return {"meta": meta, "summary": summary, "photos": rows}


def print_summary(result: Dict) -> None:
    s = result["summary"]
    m = result["meta"]
    print(f"\nidentity photos, max side {m['max_side']} px, rotated {m['rotate']} deg, backend {m['backend']}, "
          f"queries degraded: {m.get('preset') or 'no'}")
    t, c = s["seconds_per_photo"], s["cpu_seconds_per_photo"]
    print_table(["photos", "found", "detection %", "right person", "match %", "s/photo median", "mean", "max",
                 "CPU s median", "mean", "max"],
                [[s["photos"], s["found"], fmt(100 * s["detection_rate"], 1), s["matched_right"],
                  fmt(100 * s["match_rate"], 1), fmt(t["median"]), fmt(t["mean"]), fmt(t["max"]),
                  fmt(c["median"]), fmt(c["mean"]), fmt(c["max"])]])
    print("found by: " + ", ".join(f"{k} {v}" for k, v in sorted(s["by_detector"].items())))
    missed = s["missed"][:12] + ([f"... {len(s['missed']) - 12} more"] if len(s["missed"]) > 12 else [])
    print("missed: " + (", ".join(missed) or "none"))
    print("wrong or no person: " + ("; ".join(s["mismatched"]) or "none"))
    sc = result.get("scenes")
    if sc:
        print(f"scenes (mostly no people): {sc['faces']} face(s) on {sc['with_faces']} of {sc['photos']} photos; "
              f"CPU s/photo median {fmt(sc['cpu_seconds_per_photo']['median'])}, "
              f"max {fmt(sc['cpu_seconds_per_photo']['max'])}")


def register(p) -> None:
    """Adds the ``faces`` kind and its options to ``face2scene bench`` (after the others);
    ``--data``, ``--out``, ``--max-side``, ``--preset`` and ``--seed`` are the bench's own."""
    kind = next(a for a in p._actions if a.dest == "kind")  # argparse keeps no public handle to it
    kind.choices = [*kind.choices, "faces"]
    p.add_argument("--face-photos", type=int, default=0, help="faces: only the first N identity photos (0: all)")
    p.add_argument("--rotate", type=int, default=0, choices=[0, 90, 180, 270],
                   help="faces: rotate every photo clockwise by this much first (a scan put in sideways)")
    p.add_argument("--face-scenes", type=int, default=0,
                   help="faces: also detect on the first N scenes/sunhays80_* photos (false positives, cost)")
    others = p.get_default("func")
    p.set_defaults(func=lambda args: bench_faces_cmd(args) if args.kind == "faces" else others(args))


def bench_faces_cmd(args) -> int:
    """``face2scene bench faces``: --preset degrades the query photos (default: none)."""
    args.out.mkdir(parents=True, exist_ok=True)
    from . import common
    data = args.data or common.default_data()
    if data is None or not (Path(data) / "identities").is_dir():
        print("face2scene bench faces: error: no identities folder (give --data DIR or set F2S_SHARED_DATA)",
              file=sys.stderr)
        return 1
    try:
        result = bench_faces(Path(data), max_side=args.max_side, rotate=args.rotate,
                             limit=args.face_photos if args.face_photos > 0 else None, scenes=args.face_scenes,
                             preset=args.preset, seed=args.seed)
    except ValueError as e:
        print(f"face2scene bench faces: error: {e}", file=sys.stderr)
        return 1
    print_summary(result)
    from ..io import save_json_atomic
    path = save_json_atomic(args.out / "faces.json", result)
    print(f"\nwrote {path}")
    return 0
