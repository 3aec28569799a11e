"""Benchmark of the learned compact configuration on the held-out validation split.

    from face2scene.bench.learned import bench_learned
    res = bench_learned("/path/to/shared/data", out_dir="bench_out/learned")

Reports (printed as tables, written as JSON + PNG when ``out_dir`` is given):
- FaDeX: mean cosine similarity of codes for the same degradation on different photos, and for one
  photo under different degradations (the paper's poster: ~0.83-0.94 vs ~0), plus the explicit
  estimate's median absolute errors. The restored face is the clean face unless ``restore_face``
  (e.g. the pipeline's embedded Ref-FR) is given.
  Also through the real pipeline: whole held-out photos degraded, faces restored by the embedded
  Ref-FR from the person's other photos (``reffr=True``).
- Restorers: median Y-PSNR of the degraded input, the OpenCV baseline, the classical restorer with
  the blind estimate, with the pipeline's face-derived estimate (the classical default) and with
  the true parameters, and the compact restorer with the null code (blind estimate for its base),
  the face code (face-derived estimate) and the true-parameter code (FaDeX on the clean photo
  degraded with the logged parameters; true parameters for its base: an upper bound), plus any
  ``extra_rows`` the caller passes; paired median differences face - null and face - classical.
- Speed: compact inference seconds per megapixel at 1 MP (tiled, base restoration included).

Command line: ``face2scene bench learned [--data DIR] [--out DIR] [--per-photo N]``.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from ..estimate.learned import code_similarity, param_errors, similarity_stats
from ..metrics import psnr

PSNR_CAP = 60.0  # dB, for identical images (a sample drawn with no degradation)
RestoreFace = Callable[[np.ndarray, int], np.ndarray]  # (degraded face crop, photo index) -> restored crop


@torch.no_grad()
def code_similarity_reffr(fadex, photos, degrader, n_deg: int, seed: int, log=print) -> Dict:
    """As :func:`code_similarity`, but through the real pipeline: each held-out person photo is
    degraded whole, its faces are detected, aligned at native scale and restored by the embedded
    Ref-FR from the person's *other* photos; FaDeX sees (degraded crop, Ref-FR crop)."""
    from ..datasets import reffr_face_crops, reffr_pipeline
    from ..models.fadex import FaDeXEncoder
    from ..models.imageops import to_tensor
    pipe = reffr_pipeline()
    rng = np.random.default_rng(seed)
    params = [degrader.sample(rng) for _ in range(n_deg)]
    codes = np.zeros((len(photos), n_deg, fadex.config.code_dim), np.float32)
    valid = np.zeros((len(photos), n_deg), bool)
    errs = []
    for i, p in enumerate(photos):
        for k, prm in enumerate(params):
            fc = reffr_face_crops(pipe, degrader.apply(p.rgb, prm), p, photos)
            if fc is None:
                continue
            out = fadex(to_tensor(fc.degraded), to_tensor(fc.restored))
            codes[i, k], valid[i, k] = out.code[0].numpy(), True
            errs.append(param_errors(FaDeXEncoder.decode_params(out.params)[0], prm["summary"]))
    log(f"  (Ref-FR faces restored for {int(valid.sum())}/{valid.size} photo x degradation pairs)")
    return similarity_stats(codes, valid, errs)


def _estimating_pipeline():
    """The project pipeline with its own estimate and the classical restorer, faces not pasted back."""
    from ..pipeline import Face2ScenePipeline, PipelineConfig
    return Face2ScenePipeline(PipelineConfig(device="cpu", restorer="classical", paste_faces=False))


def _face_native(photo, rng, size: int = 96) -> Optional[np.ndarray]:
    from ..datasets import face_crop
    c = face_crop(photo, size, rng)
    return None if c is None else c.copy()


def bench_learned(data_root: str | Path, weights: Optional[str | Path] = None, n_degradations: int = 8,
                  per_photo: int = 2, max_side: int = 512, seed: int = 0, presets: Sequence[str] = ("simple",),
                  restore_face: Optional[RestoreFace] = None,
                  extra_rows: Optional[Dict[str, Callable[[np.ndarray, Dict], np.ndarray]]] = None,
                  out_dir: Optional[str | Path] = None, speed: bool = True, reffr: bool = True,
                  log=print) -> Dict:
    from ..datasets import Degrader, list_photos, load_photos, split_photos
    from ..estimate.learned import FaceCrops
    from ..restorers.compact import load_compact_restorer
    torch.set_flush_denormal(True)
    backend = load_compact_restorer(folder=weights)
    cfg_path = Path(backend.folder) / "train_config.json"
    tcfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    root = Path(data_root)
    dirs = [d for d in (root / "identities", root / "scenes") if d.is_dir()]
    if not dirs:
        raise FileNotFoundError(f"no identities/ or scenes/ folder under {root}")
    _, val = split_photos(list_photos(dirs), tcfg.get("val_fraction", 0.2), tcfg.get("seed", 0))
    load_photos(val, max_side, log=lambda m: None)
    degrader = Degrader(presets)
    rng = np.random.default_rng(seed)
    faces_photos = [p for p in val if p.is_person and p.face_box is not None]
    result: Dict = {"weights": str(backend.folder), "presets": list(presets), "per_photo": per_photo,
                    "max_side": max_side, "val_groups": sorted({p.group for p in val}),
                    "restored_face": "given restore_face" if restore_face else "clean face (oracle restoration)"}

    # --- FaDeX code similarity
    faces = [f for f in (_face_native(p, np.random.default_rng(seed + i)) for i, p in enumerate(faces_photos)) if f is not None]
    sim = code_similarity(backend.fadex, faces, degrader, n_degradations, seed, restore_face)
    result["fadex"] = {k: v for k, v in sim.items() if not k.startswith("_")}
    log(f"\nFaDeX on {len(faces)} held-out faces x {n_degradations} degradations ({result['restored_face']})")
    _log_similarity(sim, log)
    if reffr:
        log("\nFaDeX through the pipeline: whole held-out photos degraded, faces restored by the embedded Ref-FR")
        sim_r = code_similarity_reffr(backend.fadex, faces_photos, degrader, n_degradations, seed, log)
        result["fadex_reffr"] = {k: v for k, v in sim_r.items() if not k.startswith("_")}
        _log_similarity(sim_r, log)

    # --- restorer PSNR
    # Every row of a photo sees the same degraded pixels. The face-derived information comes from
    # the real pipeline (faces, people from the person's other held-out photos, Ref-FR, analytic
    # FaDeX) run on a person photo under the *same* degradation: the photo itself for person
    # photos, a held-out person photo for scenes (standing in for a face in the scene). Its
    # estimate is what the classical default and the compact model's base use; its Ref-FR faces
    # give the compact face code. "classical default" is what `face2scene restore --restorer
    # classical` makes (faces not pasted back: only the scene restorer differs between rows).
    from ..estimate import blind_estimate, estimate_jpeg_quality
    from ..restorers.classical import ClassicalRestorer, opencv_baseline
    from ..types import DegradationEstimate
    cr = ClassicalRestorer()
    names = ["degraded input", "OpenCV baseline (NLM h=10)", "classical, blind estimate",
             "classical default (face-derived estimate)", "classical, true parameters",
             "compact + null code (blind)", "compact + face code", "compact + true-parameter code"]
    extra = dict(extra_rows or {})
    rows: Dict[str, List[float]] = {n: [] for n in names + list(extra)}
    kinds = []
    pipe = _estimating_pipeline() if reffr else None
    for pi, p in enumerate(val):
        for _ in range(per_photo):
            params = degrader.sample(rng)
            s = params["summary"]
            clean = p.rgb
            deg = degrader.apply(clean, params)
            est_true = DegradationEstimate(s["noise_sigma"], s["blur_sigma"], s.get("jpeg_quality"),
                                           s.get("scale", 1.0), source="given")
            est_blind = blind_estimate(deg, estimate_jpeg_quality(deg))
            est_face, code = est_blind, None
            fp = p if (p.is_person and p.face_box is not None) else \
                (faces_photos[pi % len(faces_photos)] if faces_photos else None)
            if pipe is not None and fp is not None:
                fdeg_photo = deg if fp is p else degrader.apply(fp.rgb, params)
                refs = [q.rgb for q in faces_photos if q.group == fp.group and q.path != fp.path]
                res = pipe.restore(fdeg_photo, people={fp.group.split("/")[-1]: refs} if refs else None)
                crops = [FaceCrops(f.degraded_crop, f.restored_crop, f.affine, float(f.face.size))
                         for f in res.faces if f.restored_crop is not None]
                if res.degradation.source == "face" and crops:
                    est_face, code = res.degradation, backend.face_code(crops)
                    kind = ("person photo" if fp is p else
                            "scene + held-out person photo" if not p.is_person else "person + another's photo")
            if code is None or code.source != "face":  # no pipeline face: a clean face crop stands in
                fclean = _face_native(fp, rng) if fp is not None else None
                if fclean is not None:
                    fdeg = degrader.apply(fclean, params)
                    frest = restore_face(fdeg, pi) if restore_face else fclean
                    code = backend.face_code([FaceCrops(fdeg, frest)])
                    kind = "face crop, blind estimate"
                else:
                    code, kind = backend.null_code(), "no face"
            c0 = min(clean.shape[0], clean.shape[1], 128)
            y0, x0 = (clean.shape[0] - c0) // 2, (clean.shape[1] - c0) // 2
            true_code = backend.code_from_pair(deg[y0:y0 + c0, x0:x0 + c0], clean[y0:y0 + c0, x0:x0 + c0], "given")
            outs = {
                "degraded input": deg,
                "OpenCV baseline (NLM h=10)": opencv_baseline(deg),
                "classical, blind estimate": cr.restore_array(deg, est_blind),
                "classical default (face-derived estimate)": cr.restore_array(deg, est_face),
                "classical, true parameters": cr.restore_array(deg, est_true),
                "compact + null code (blind)": backend.restore_with_tokens(deg, None, estimate=est_blind),
                "compact + face code": backend.restore_with_tokens(deg, code, estimate=est_face),
                "compact + true-parameter code": backend.restore_with_tokens(deg, true_code, estimate=est_true),
            }
            for name, fn in extra.items():
                outs[name] = fn(deg, params)
            for name, img in outs.items():  # capped: an undegraded sample would make the mean infinite
                rows[name].append(min(psnr(img, clean), PSNR_CAP))
            kinds.append(kind)
    kinds_arr = np.array(kinds)
    table = {}
    log(f"\nRestorers on {len(kinds)} degraded held-out photos (max side {max_side}), Y-PSNR dB")
    log("  (person photo: the pipeline's estimate and face code from its own face restored by the embedded"
        " Ref-FR; scene + held-out person photo: the same from a held-out person photo under the same"
        " degradation, as if that face were in the scene)")
    kind_names = sorted(set(kinds))
    log(f"  {'row':42s} {'median':>7s} {'mean':>7s}   " + "  ".join(f"{k[:22]:>22s}" for k in kind_names))
    for name, v in rows.items():
        v = np.array(v)
        per_kind = {k: float(np.median(v[kinds_arr == k])) for k in kind_names}
        table[name] = {"median": float(np.median(v)), "mean": float(np.mean(v)), "by_kind": per_kind}
        log(f"  {name:42s} {np.median(v):7.2f} {np.mean(v):7.2f}   " + "  ".join(f"{x:22.2f}" for x in per_kind.values()))
    face, null = np.array(rows["compact + face code"]), np.array(rows["compact + null code (blind)"])
    classical = np.array(rows["classical default (face-derived estimate)"])
    table["face minus null (median of paired differences)"] = float(np.median(face - null))
    table["compact face minus classical default (median of paired differences)"] = float(np.median(face - classical))
    log(f"  compact face code - null code, median paired difference: {np.median(face - null):+.2f} dB")
    log(f"  compact face code - classical default, median paired difference: {np.median(face - classical):+.2f} dB")
    result["psnr"] = table
    result["n_images"] = len(kinds)
    result["kinds"] = {k: int((kinds_arr == k).sum()) for k in kind_names}

    # --- speed
    if speed:
        src = cv2.resize(val[0].rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        backend.restore_with_tokens(src, backend.null_code(), tile=512)
        dt = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["speed"] = {"s_per_mp": dt / (1024 * 1024 / 1e6), "threads": torch.get_num_threads(),
                           "peak_rss_mb": rss1 / 1024, "peak_rss_growth_mb": (rss1 - rss0) / 1024}
        log(f"\nCompact inference: {result['speed']['s_per_mp']:.2f} s/MP at 1 MP, tile 512, "
            f"{torch.get_num_threads()} threads (process peak RSS {rss1 / 1024:.0f} MB)")

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_learned.json").write_text(json.dumps(result, indent=2))
        _plot(out / "bench_learned.png", sim, rows, sim_r if reffr else None)
        log(f"wrote {out / 'bench_learned.json'} and {out / 'bench_learned.png'}")
    return result


def _log_similarity(sim: Dict, log) -> None:
    log(f"  mean cosine, same degradation / different photos : {sim['cos_same_degradation']:.3f}")
    log(f"  mean cosine, same photo / different degradations : {sim['cos_same_photo']:.3f}")
    log(f"  explicit estimate, median abs error: noise {sim['mae_noise']:.2f}  blur {sim['mae_blur']:.2f} px  "
        f"JPEG q {sim['mae_jpeg']:.1f}  scale {sim['mae_scale']:.3f}")


def _plot(path: Path, sim: Dict, rows: Dict[str, List[float]], sim_r: Optional[Dict] = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    bins = np.linspace(-1, 1, 41)
    a.hist(sim["_same_deg"], bins=bins, alpha=0.5, label="same degradation, different photos (clean face)")
    a.hist(sim["_same_photo"], bins=bins, alpha=0.5, label="same photo, different degradations (clean face)")
    if sim_r is not None:
        a.hist(sim_r["_same_deg"], bins=bins, histtype="step", lw=1.5, label="same degradation (Ref-FR face)")
        a.hist(sim_r["_same_photo"], bins=bins, histtype="step", lw=1.5, label="same photo (Ref-FR face)")
    a.set_xlabel("cosine similarity of FaDeX codes")
    a.legend(fontsize=8)
    a.set_title("FaDeX: degradation vs content")
    b.boxplot(list(rows.values()), orientation="horizontal")
    b.set_yticks(range(1, len(rows) + 1), list(rows.keys()), fontsize=8)
    b.set_xlabel("Y-PSNR (dB)")
    b.set_title("held-out photos")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
