"""``face2scene bench quality``: synthetic degradations (logged, seeded) of real photos through the
pipeline; references are *other* photos of the same person (see :mod:`face2scene.bench`).

Photos: identity photos (``--samples``, cycling over the people) and, with ``--scenes N``, scenes
without faces, so the blind estimate is measured too; ``--split val`` takes both from the learned
models' held-out split. ``--preset`` takes several presets (``clean,near-clean,mild``); each gets
its own tables. Per row and preset: median PSNR gain and the *worst* photo's, the number of photos
made worse (gain < −0.1 dB), texture kept (the detail ratio of :mod:`face2scene.metrics`: Laplacian
energy restored / clean, whole photo and the clean photo's face box), GMSD (gradient magnitude
similarity deviation, lower is better; whole photo and face box), the face box's gain next to the whole photo's, the share of faces whose
identity embedding moved closer to the clean face's than the degraded input's was, the estimate
and its errors (noise error on the scenes alone: the blind estimate). ``--upscale-check`` also
restores clean photos downscaled by 2 with ``upscale=2`` against bicubic interpolation.

PSNR is capped at :data:`~face2scene.bench.common.PSNR_CAP` (an untouched ``clean`` photo gains
0 dB, not inf − inf)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import common
from .common import capped_psnr, fmt, print_table, texture_ratio

ROWS = ("degraded", "opencv", "blind", "face", "true")
LABELS = {"degraded": "degraded input", "opencv": "OpenCV NLM (h=10)", "blind": "pipeline, blind estimate",
          "face": "pipeline, face-derived estimate", "true": "pipeline, true parameters"}
WORSE_DB = -0.1  # a photo whose gain is below this came back worse than it went in
#: the learned models' split (written by their training); ``--split val`` benchmarks its held-out part
SPLIT_JSON = Path(__file__).resolve().parents[1] / "weights" / "compact" / "split.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options only ``bench quality`` reads (``--preset`` may list several, comma separated)."""
    p.add_argument("--split", choices=["all", "val"], default="all",
                   help="quality: all photos, or the learned models' held-out split (its people and scenes)")
    p.add_argument("--persons", default=None, help="quality: only these people (comma separated)")
    p.add_argument("--scenes", type=int, default=0,
                   help="quality: also N scenes without faces (the blind estimate's photos), spread over <data>/scenes "
                        "(or over the split's scenes)")
    p.add_argument("--scene-names", default=None,
                   help="quality: scenes from these files of <data>/scenes (comma separated; all of them unless --scenes N)")
    p.add_argument("--keep-grain", action="store_true",
                   help="quality: run the pipeline with keep grain on ('auto': film grain put back on photos that read "
                        "as film); off by default: grain is a look, and its random phase costs PSNR")
    p.add_argument("--upscale-check", action="store_true",
                   help="quality: also restore clean photos downscaled by 2 with --upscale 2, against bicubic")


def parse_presets(text: Optional[str]) -> List[str]:
    """``"clean,near-clean,mild"`` -> the list; ValueError naming an unknown preset."""
    from ..degrade import PRESETS
    names = [p.strip() for p in (text or "mild").split(",") if p.strip()]
    bad = [p for p in names if p not in PRESETS]
    if bad or not names:
        raise ValueError(f"unknown degradation preset {', '.join(bad) or repr(text)}; choose from "
                         f"{', '.join(sorted(PRESETS))} (several: comma separated)")
    return list(dict.fromkeys(names))


def _val_split() -> Dict[str, List[str]]:
    """{"persons": [...], "scenes": [...]} of the learned models' held-out groups."""
    groups = json.loads(SPLIT_JSON.read_text())["val_groups"]
    return {"persons": [g.split("/", 1)[1] for g in groups if g.startswith("identities/")],
            "scenes": [g.split("/", 1)[1] for g in groups if g.startswith("scenes/")]}


def _samples(data: Path, n: int, first: int = 0, persons: Optional[Sequence[str]] = None):
    """(person, clean path, reference paths) triples, cycling over people and photos."""
    dirs = [p for p in sorted((data / "identities").iterdir()) if p.is_dir() and (persons is None or p.name in persons)]
    people = {p.name: sorted(q for q in p.iterdir() if q.is_file()) for p in dirs}
    out, k = [], first
    while len(out) < n and k < 50:
        for name, files in people.items():
            if k < len(files) and len(out) < n:
                out.append((name, files[k], [f for f in files if f != files[k]]))
        k += 1
    return out


def _scenes(data: Path, n: int, names: Optional[Sequence[str]] = None) -> List[Path]:
    """``n`` of ``names`` (files of <data>/scenes; default all its files), evenly spread over the list."""
    if n <= 0:
        return []
    folder = data / "scenes"
    if not folder.is_dir():
        raise FileNotFoundError(f"--scenes needs a scenes folder: {folder} is absent")
    if names:
        missing = [s for s in names if not (folder / s).is_file()]
        if missing:
            raise FileNotFoundError(f"no such scene in {folder}: {', '.join(missing)}")
        files = [folder / s for s in names]
    else:
        files = sorted(q for q in folder.iterdir() if q.is_file())
    # spread over the (sorted) list: the scenes come from several sources, grouped by name
    picks = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)) if files else []
    return [files[k] for k in picks]


def _face_box(backend, rgb):
    faces = [f for f in backend.detect(rgb) if f.usable]
    if not faces:
        return None, None
    f = faces[0]
    x0, y0, x1, y1 = (int(round(v)) for v in f.box)
    return (max(0, x0), max(0, y0), min(rgb.shape[1], x1), min(rgb.shape[0], y1)), f


def _identity(backend, rgb, clean_face):
    """(cosine similarity, backend distance) of the identity embeddings of the restored and the
    clean face, embedded at the clean face's landmarks. dlib's 128-d vectors are not centred, so
    their cosine stays near 1; the Euclidean distance (same person < 0.6) separates better."""
    if clean_face is None:
        return None, None
    e = backend.embed(rgb, clean_face)
    c = clean_face.embedding
    return float(e @ c / (np.linalg.norm(e) * np.linalg.norm(c) + 1e-12)), backend.distance(e, c)


def row_metrics(clean: np.ndarray, outs: Dict[str, np.ndarray], box=None, backend=None, clean_face=None) -> Dict:
    """{row: measures} of each output against the clean photo. ``outs`` must hold "degraded":
    gains (``gain``, ``face_gain``) are against it and ``id_better`` says whether the identity
    distance to the clean face is smaller than the degraded input's (``id_not_worse``: not larger;
    both absent for the input itself)."""
    from ..metrics import gmsd, ssim
    rows = {}
    for row, img in outs.items():
        r = {"psnr": capped_psnr(clean, img), "ssim": ssim(clean, img), "tex": texture_ratio(clean, img),
             "gmsd": gmsd(clean, img)}
        if box is not None:
            x0, y0, x1, y1 = box
            c, o = clean[y0:y1, x0:x1], img[y0:y1, x0:x1]
            r.update({"face_psnr": capped_psnr(c, o, border=0), "face_ssim": ssim(c, o, border=0),
                      "face_tex": texture_ratio(c, o, border=1),
                      "face_gmsd": gmsd(c, o) if min(c.shape[:2]) >= 4 else None})
            if backend is not None:
                r["identity"], r["identity_dist"] = _identity(backend, img, clean_face)
        rows[row] = r
    deg = rows["degraded"]
    for row, r in rows.items():
        r["gain"] = r["psnr"] - deg["psnr"]
        if "face_psnr" in r:
            r["face_gain"] = r["face_psnr"] - deg["face_psnr"]
        if row != "degraded" and r.get("identity_dist") is not None:
            r["id_better"] = bool(r["identity_dist"] < deg["identity_dist"])
            r["id_not_worse"] = bool(r["identity_dist"] <= deg["identity_dist"])  # an untouched face: equal
    return rows


def add_estimate_errors(rows: Dict, ests: Dict, truth: Dict) -> None:
    """Each estimated row's estimate (``est_noise``, ``est_blur``) and absolute errors against the
    logged parameters (JPEG "none" counts as quality 100)."""
    tq = 100.0 if truth["jpeg_quality"] is None else truth["jpeg_quality"]
    for row, e in ests.items():
        jq = 100.0 if e.jpeg_quality is None else e.jpeg_quality
        rows[row].update({"est_noise": e.noise_sigma, "est_blur": e.blur_sigma,
                          "err_noise": abs(e.noise_sigma - truth["noise_sigma"]),
                          "err_blur": abs(e.blur_sigma - truth["blur_sigma"]), "err_jpeg": abs(jq - tq),
                          "source": e.source})


def _median(vals):
    vals = [v for v in vals if v is not None]
    return float(np.median(vals)) if vals else None


def summarize(records: List[Dict]) -> Dict[str, Dict]:
    """Per row over ``records`` (one preset): medians, the worst photo, photos made worse, texture,
    face vs whole-photo gain, identity, estimate (noise error also on the scenes alone)."""
    summary = {}
    for row in ROWS:
        rs = [r["rows"][row] for r in records]
        med = lambda key, rs=rs: _median([x.get(key) for x in rs])
        s = {k: med(k) for k in ("psnr", "ssim", "face_psnr", "face_ssim", "identity", "identity_dist",
                                 "err_noise", "err_blur", "err_jpeg", "gmsd", "face_gmsd")}
        gains = [x["gain"] for x in rs]
        s["psnr_gain"] = med("gain")
        k_worst = int(np.argmin(gains)) if gains else None
        s["worst_gain"] = None if k_worst is None else float(gains[k_worst])
        s["worst_photo"] = None if k_worst is None else records[k_worst]["photo"]
        s["n_worse"] = int(sum(g < WORSE_DB for g in gains))
        s["n"] = len(rs)
        s["tex"], s["face_tex"], s["face_gain"] = med("tex"), med("face_tex"), med("face_gain")
        # face box gain against the whole-photo gain of the same (person) photos
        with_face = [x for x in rs if x.get("face_gain") is not None]
        whole = _median([x["gain"] for x in with_face])
        s["face_minus_whole"] = None if s["face_gain"] is None or whole is None else s["face_gain"] - whole
        ids = [x["id_better"] for x in rs if x.get("id_better") is not None]
        s["id_better"] = float(np.mean(ids)) if ids else None
        kept = [x["id_not_worse"] for x in rs if x.get("id_not_worse") is not None]
        s["id_not_worse"] = float(np.mean(kept)) if kept else None
        s["n_faces"] = len(ids)
        s["est_noise"], s["est_blur"] = med("est_noise"), med("est_blur")
        scenes = [r["rows"][row] for r in records if r.get("kind") == "scene"]
        s["err_noise_scenes"] = _median([x.get("err_noise") for x in scenes])
        s["n_scenes"] = len(scenes)
        summary[row] = s
    return summary


def preset_tables(summary: Dict[str, Dict]) -> str:
    """The two tables of one preset: the classic one and the do-no-harm one."""
    header = ["row (median)", "PSNR", "gain", "SSIM", "GMSD", "face PSNR", "face SSIM", "face GMSD", "id cos",
              "id dist", "|Δnoise|", "|Δblur|", "|ΔJPEG q|"]
    rows = [[LABELS[r], fmt(s["psnr"]), fmt(s["psnr_gain"]), fmt(s["ssim"], 3), fmt(s.get("gmsd"), 3),
             fmt(s["face_psnr"]), fmt(s["face_ssim"], 3), fmt(s.get("face_gmsd"), 3), fmt(s["identity"], 3),
             fmt(s["identity_dist"], 3), fmt(s["err_noise"]), fmt(s["err_blur"]), fmt(s["err_jpeg"], 1)]
            for r, s in summary.items()]
    text = print_table(header, rows)
    print()
    header = ["row", "gain", "worst", "worse", "texture", "face gain", "face−whole", "face texture",
              "id better", "noise est", "blur est", "|Δnoise| scenes"]
    rows = []
    for r, s in summary.items():
        idb = "—" if s["id_better"] is None else f"{round(s['id_better'] * s['n_faces'])}/{s['n_faces']}"
        rows.append([LABELS[r], fmt(s["psnr_gain"]), fmt(s["worst_gain"]), f"{s['n_worse']}/{s['n']}",
                     fmt(s["tex"]), fmt(s["face_gain"]), fmt(s["face_minus_whole"]), fmt(s["face_tex"]), idb,
                     fmt(s["est_noise"]), fmt(s["est_blur"]), fmt(s["err_noise_scenes"])])
    return text + "\n\n" + print_table(header, rows)


def across_presets(by_preset: Dict[str, Dict], row: str = "face") -> str:
    """One line per preset for ``row`` (the default pipeline): the do-no-harm numbers side by side."""
    header = ["preset", "photos", "gain", "worst", "worse", "texture", "face texture", "GMSD", "face gain",
              "face−whole", "id better", "noise est", "blur est", "blind |Δnoise| scenes"]
    rows = []
    for preset, b in by_preset.items():
        s, bl = b["summary"][row], b["summary"]["blind"]
        idb = "—" if s["id_better"] is None else f"{round(s['id_better'] * s['n_faces'])}/{s['n_faces']}"
        rows.append([preset, str(s["n"]), fmt(s["psnr_gain"]), fmt(s["worst_gain"]), f"{s['n_worse']}/{s['n']}",
                     fmt(s["tex"]), fmt(s["face_tex"]), fmt(s.get("gmsd"), 3), fmt(s["face_gain"]),
                     fmt(s["face_minus_whole"]), idb, fmt(s["est_noise"]), fmt(s["est_blur"]),
                     fmt(bl["err_noise_scenes"])])
    print(f"\n{LABELS[row]}, by preset (worse: gain < {WORSE_DB} dB; texture: detail ratio, Laplacian energy "
          "restored / clean; GMSD: lower is better)")
    return print_table(header, rows)


class _Pipes:
    """The benchmarked pipelines, sharing one face backend, restorer and reference analysis."""

    def __init__(self, restorer: str, seed: int, models_dir: Optional[Path] = None,
                 keep_grain: bool = False) -> None:
        from ..pipeline import Face2ScenePipeline, PipelineConfig
        # fidelity is measured without grain re-synthesis unless asked for (--keep-grain)
        self.cfg = PipelineConfig(device="cpu", restorer=restorer, seed=seed, models_dir=models_dir,
                                  keep_grain="auto" if keep_grain else False)
        self.face = Face2ScenePipeline(self.cfg)
        self.blind = self._like(estimate_mode="blind")
        self.true = self._like()
        self._up: Optional[object] = None

    def _like(self, **changes):
        from ..pipeline import Face2ScenePipeline, PipelineConfig
        p = Face2ScenePipeline(PipelineConfig(**{**self.cfg.__dict__, **changes}))
        p._index_cache = self.face._index_cache  # the analysed references, once
        p._backend = self.face.face_backend
        return p

    def restorer_shared(self) -> None:
        """After the first restoration: every pipeline uses the face pipeline's restorer."""
        for p in (self.blind, self.true, self._up):
            if p is not None and p._restorer is None and self.face._restorer is not None:
                p._restorer, p._restorer_warning = self.face._restorer, self.face._restorer_warning

    def with_truth(self, given):
        from ..pipeline import PipelineConfig
        self.true.config = PipelineConfig(**{**self.cfg.__dict__, "estimate": given})
        return self.true

    def upscale2(self):
        if self._up is None:
            self._up = self._like(upscale=2)
            self.restorer_shared()
        return self._up


def _load(path: Path, max_side: int) -> np.ndarray:
    from ..datasets import load_rgb
    return load_rgb(str(path), max_side, resample="area")


def _photo_record(pipes: _Pipes, item, preset: str, i: int, max_side: int, seed: int) -> Dict:
    from ..degrade import degrade
    from ..restorers.classical import opencv_baseline
    from ..types import DegradationEstimate
    kind, person, path, refs = item
    clean = _load(path, max_side)
    box, clean_face = _face_box(pipes.face.face_backend, clean) if kind == "person" else (None, None)
    degraded, params = degrade(clean, preset, seed=seed * 1000 + i)
    truth = params["summary"]
    people = {person: refs} if person else None
    outs, ests, times = {"degraded": degraded, "opencv": opencv_baseline(degraded)}, {}, {}
    faces_found = 0
    for row in ("face", "blind"):
        t = time.perf_counter()
        if row == "blind" and kind == "scene" and not faces_found:
            # no face and no references: the auto estimate *is* the blind one (same code path)
            outs["blind"], ests["blind"], times["blind"] = outs["face"], ests["face"], times["face"]
            continue
        res = getattr(pipes, row).restore(degraded, people)
        pipes.restorer_shared()
        times[row] = time.perf_counter() - t
        outs[row], ests[row] = res.image, res.degradation
        if row == "face":
            faces_found = len(res.faces)
    given = DegradationEstimate(truth["noise_sigma"], truth["blur_sigma"], truth["jpeg_quality"], truth["scale"],
                                "given", 1.0)
    outs["true"] = pipes.with_truth(given).restore(degraded, people).image
    rows = row_metrics(clean, {k: outs[k] for k in ROWS}, box, pipes.face.face_backend, clean_face)
    add_estimate_errors(rows, ests, truth)
    return {"preset": preset, "kind": kind, "person": person, "photo": path.name, "size": [clean.shape[1], clean.shape[0]],
            "truth": truth, "estimates": {k: v.to_json() for k, v in ests.items()}, "seconds": times, "rows": rows}


def upscale_check(pipes: _Pipes, items, max_side: int) -> Dict:
    """Clean photos downscaled by 2 (area), restored with ``upscale=2`` and enlarged by bicubic
    interpolation; PSNR and texture ratio of both against the original."""
    import cv2
    recs = []
    for kind, person, path, refs in items:
        clean = _load(path, max_side)
        h, w = clean.shape[0] // 2 * 2, clean.shape[1] // 2 * 2
        clean = clean[:h, :w]
        small = cv2.resize(clean, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        bic = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        res = pipes.upscale2().restore(small, {person: refs} if person else None)
        r = {"kind": kind, "photo": path.name, "person": person, "psnr_bicubic": capped_psnr(clean, bic),
             "psnr_pipeline": capped_psnr(clean, res.image), "tex_bicubic": texture_ratio(clean, bic),
             "tex_pipeline": texture_ratio(clean, res.image), "estimate": res.degradation.to_json()}
        r["gain_over_bicubic"] = r["psnr_pipeline"] - r["psnr_bicubic"]
        recs.append(r)
        print(f"x2 {(person + '/' if person else '') + path.name}: bicubic {r['psnr_bicubic']:.2f} dB, pipeline "
              f"{r['psnr_pipeline']:.2f} dB ({r['gain_over_bicubic']:+.2f}), texture {fmt(r['tex_bicubic'])} / "
              f"{fmt(r['tex_pipeline'])}", flush=True)
    d = [r["gain_over_bicubic"] for r in recs]
    summary = {"n": len(recs), "psnr_bicubic": _median([r["psnr_bicubic"] for r in recs]),
               "psnr_pipeline": _median([r["psnr_pipeline"] for r in recs]), "gain_over_bicubic": _median(d),
               "worst_gain_over_bicubic": float(min(d)) if d else None,
               "n_below_bicubic": int(sum(x < 0 for x in d)),
               "tex_bicubic": _median([r["tex_bicubic"] for r in recs]),
               "tex_pipeline": _median([r["tex_pipeline"] for r in recs])}
    print("\n--upscale 2 of clean photos downscaled by 2, against bicubic (median)")
    table = print_table(["", "PSNR", "texture"],
                        [["bicubic", fmt(summary["psnr_bicubic"]), fmt(summary["tex_bicubic"])],
                         ["pipeline, upscale 2", fmt(summary["psnr_pipeline"]), fmt(summary["tex_pipeline"])]])
    line = (f"pipeline − bicubic: median {fmt(summary['gain_over_bicubic'])} dB, worst "
            f"{fmt(summary['worst_gain_over_bicubic'])} dB, {summary['n_below_bicubic']}/{len(recs)} below bicubic")
    print(line)
    return {"summary": summary, "records": recs, "table": table + "\n" + line}


def bench_quality(args) -> Dict:
    data = args.data or common.default_data()
    if data is None or not (data / "identities").is_dir():
        print("error: no development photos found (pass --data DIR with identities/<person>/...)", file=sys.stderr)
        return {}
    try:
        presets = parse_presets(args.preset)
        split = _val_split() if getattr(args, "split", "all") == "val" else None
        persons = args.persons.split(",") if getattr(args, "persons", None) else (split or {}).get("persons")
        names = args.scene_names.split(",") if getattr(args, "scene_names", None) else (split or {}).get("scenes")
        n_scenes = getattr(args, "scenes", 0) or (len(names) if getattr(args, "scene_names", None) else 0)
        items = [("person", p, f, refs) for p, f, refs in _samples(data, args.samples, args.first, persons)]
        items += [("scene", None, s, None) for s in _scenes(data, n_scenes, names)]
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return {}
    if not items:
        print("error: no photos to benchmark (--samples and --scenes are both 0, or no person matched)", file=sys.stderr)
        return {}
    keep_grain = bool(getattr(args, "keep_grain", False))
    pipes = _Pipes(args.restorer, args.seed, getattr(args, "weights", None), keep_grain)
    records, by_preset, texts = [], {}, []
    for preset in presets:
        recs = []
        for i, item in enumerate(items):
            rec = _photo_record(pipes, item, preset, i, args.max_side, args.seed)
            recs.append(rec)
            name = (item[1] + "/" if item[1] else "") + item[2].name
            print(f"[{preset} {i + 1}/{len(items)}] {name}: " + ", ".join(
                f"{row} {rec['rows'][row]['psnr']:.2f}" for row in ROWS) + " dB", flush=True)
        summary = summarize(recs)
        n_sc = sum(r["kind"] == "scene" for r in recs)
        head = (f"\nquality: {len(recs)} photos ({len(recs) - n_sc} people, {n_sc} scenes) from {data}, "
                f"preset {preset}, restorer {args.restorer}, keep grain {'auto' if keep_grain else 'off'}")
        print(head)
        texts.append(head.strip() + "\n" + preset_tables(summary))
        by_preset[preset] = {"samples": len(recs), "summary": summary}
        records += recs
    if len(presets) > 1:
        texts.append(across_presets(by_preset))
    out = {"kind": "quality", "preset": ",".join(presets), "presets": presets, "samples": len(items),
           "keep_grain": "auto" if keep_grain else False,
           "summary": by_preset[presets[0]]["summary"], "by_preset": by_preset, "records": records,
           "command": " ".join(sys.argv)}
    if getattr(args, "upscale_check", False):
        out["upscale_check"] = upscale_check(pipes, items, args.max_side)
        texts.append(out["upscale_check"]["table"])
    _plot_quality(records, presets, args.out / "quality.png")
    return {**out, "table": "\n\n".join(texts)}


def _plot_quality(records, presets, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    gains, labels = [], []
    for preset in presets:
        for row in ROWS[1:]:
            gains.append([r["rows"][row]["gain"] for r in records if r["preset"] == preset])
            labels.append(row if len(presets) == 1 else f"{preset}\n{row}")
    ax[0].boxplot(gains, tick_labels=labels)
    ax[0].axhline(0, color="k", lw=0.5)
    ax[0].tick_params(axis="x", labelsize=7 if len(presets) > 1 else 10)
    ax[0].set_title("PSNR gain over the degraded input (dB)")
    for j, (key, name) in enumerate((("noise_sigma", "noise σ"), ("blur_sigma", "blur σ (px)"))):
        a = ax[1 + j]
        t = [r["truth"][key] for r in records]
        for row, m in (("blind", "x"), ("face", "o")):
            a.scatter(t, [r["estimates"][row][key] for r in records], marker=m, label=row)
        lim = max(max(t), 1e-3) * 1.2
        a.plot([0, lim], [0, lim], "k--", lw=0.7)
        a.set_xlabel(f"true {name}")
        a.set_ylabel(f"estimated {name}")
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
