"""Issue 9: where does the face lose? Per face, face-box PSNR (clean photo's dlib box) of the
degraded input, the scene restorer's output (what the paste step sees), the refined face alone
(face-fix pasted whole), the pipeline's final paste and candidate pastes; identity distance too.

Step 1 (always; cached per photo) runs the pipeline as ``face2scene bench quality`` does
(``_load`` at ``--max-side``, ``degrade(preset, seed=seed*1000+i)``, the person's other photos as
references, restorer ``auto``) and keeps what ``_refine_faces`` sees. Step 2 re-pastes the faces
from the cache in several ways (fast: no scene restoration).

    PYTHONPATH=. python scripts/facefix_faces.py --split dev --preset mild --samples 12 --cache /tmp/ffc --candidates
    PYTHONPATH=. python scripts/facefix_faces.py --split val --preset mild --samples 8 --cache /tmp/ffv
    PYTHONPATH=. python scripts/facefix_faces.py --split val --preset mild --samples 8 --cache /tmp/ffv \
        --faceprior /tmp/fp/runB/weights --variants "scene,repaste,faceprior,faceprior + step"

``--faceprior``: the learned face prior of ``scripts/faceprior_train.py`` (session 7: no gain on
validation, within ±0.05 dB; its docstring has the table). Its training caches are this script's
step 1 on the training split (``--split dev --samples 46 --seed 1 --variants scene``, optionally
``--flip --face-crop 0.9``).

The face-box and whole-photo gains are the bench's (``face2scene bench quality``, its "face" row,
the same photos, seeds and boxes with ``--scenes 0``); whole = the person photos only.

Session 6, compact restorer (``auto``), 512 px, medians over faces (dB), id: identity distance
to the clean face below the input's. Development split, mild, 12 faces:

    variant                   whole   face    f-w  id better
    scene restorer's face     +5.00  +2.94  -2.05   10/12
    pipeline (face step)      +5.11  +3.04  -2.07   11/12
    refined face whole        +3.94  +1.26  -2.68    8/12
    candidates (--candidates), each instead of the face step:
    change pasted, fix 0.25   +5.11  +3.04  -2.06   12/12   (no second resampling of the scene's face)
    refs 1-4 px pulled 0.25   +4.99  +2.92  -2.07   10/12   (reference bands on the scene's face)
    refs 0.5-1 px 0.5         +4.97  +2.90  -2.08   10/12
    refs 2-8 px 0.25          +4.95  +2.72  -2.23    9/12
    data consistency          +0.80  -3.76  -4.56    1/12   (S + G (Y - HS)/H: puts the noise back)
    TV deconv 0.5 blur        +3.70  +1.88  -1.81    8/12   (the scene's face deblurred again)
    TV deconv 0.8 blur        +2.39  -0.59  -2.99    3/12

Where the face loses: the scene restorer's face error (face box vs clean luma, the 12 dev faces)
lies in the finest bands (DoG 0-0.7 and 0.7-1.4 px: 59-94 %, median about 82 % of the summed
band errors), along the edges of eyes, teeth, lips and the face's outline. An oracle gain per
band (the least-squares scale of the restored band onto the clean one) is 0.63-1.08, mostly
below 1 (residual noise and artefacts, not missing sharpness), and would lower the band errors
by 0-25 %: there is no under-sharpening left to undo (deconvolving again loses 1-3 dB). Detail that fine is
what blur + noise σ 5-20 + JPEG 45-90 destroyed; the references' bands that fine do not
correlate with the true face after alignment (another day, light, expression), so adding them
lowers PSNR. Also tried on 3-8 faces, not kept: the compact restorer run again on the face
region with 2/4/8 flips averaged (+0.04 dB), at ``upscale=2`` and area-reduced (-0.4 to -1.1 dB),
a light Gaussian of the face's luma after the face step (±0.03 dB), other face-fix settings
(NLM 0.35-0.7 σ, residual 0.7-1.5, no grain, no references: within ±0.04 dB of the defaults).
The faces are worse off than the whole photo because their box is mostly edges and fine
texture while the photos' backgrounds (out of focus, flat) gain most from denoising.

Validation split, mild, 8 photos (8 faces; elon_musk/img67: no face found in the degraded photo,
the scene's face stands), and s3diff, 6 photos:

    preset  variant                   whole   face    f-w  id better
    mild    scene restorer's face     +4.03  +3.28  -0.75    7/8
    mild    pipeline (face step)      +4.21  +3.38  -0.82    8/8
    s3diff  scene restorer's face     +0.25  +0.46  +0.21    2/6
    s3diff  pipeline (face step)      +0.24  +0.54  +0.31    2/6

On s3diff, 3 of 6 photos were left unchanged by the near-clean check (estimated noise 0-5
against true 7-14 after the second-order model's downscale and JPEG), so their faces are
the input (identity not better, not worse).
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from noharm_eval import DEV_PERSONS, VAL_PERSONS  # noqa: E402


def build_cache(args, pipe) -> list:
    from face2scene.bench.quality import _face_box, _load, _samples
    from face2scene.degrade import degrade
    grabbed = {}
    real = pipe._refine_faces

    def refine(run, out, est):  # the scene as the paste sees it (restored, backed off, detail equalised)
        grabbed.update(run=run, scene=out.copy(), estimate=est)
        return real(run, out, est)
    pipe._refine_faces = refine
    restorer = pipe.restorer
    real_restore = restorer.restore

    def restore(*a, **kw):  # the scene restorer's own output (before do-no-harm and detail)
        out = real_restore(*a, **kw)
        grabbed["raw"] = out.image.copy()
        return out
    restorer.restore = restore
    persons = VAL_PERSONS if args.split == "val" else DEV_PERSONS
    files = []
    for i, (person, path, refs) in enumerate(_samples(args.data, args.samples, 0, persons)):
        f = args.cache / f"{args.preset}_{person}_{path.stem}.pkl"
        files.append(f)
        if f.exists():
            continue
        clean = _load(path, args.max_side)
        if getattr(args, "flip", False):  # training data: the mirrored photo
            clean = np.ascontiguousarray(clean[:, ::-1])
        if getattr(args, "face_crop", None):  # training data: only the face's surroundings (another framing of the photo)
            box, _ = _face_box(pipe.face_backend, clean)
            if box is None:
                continue
            m = args.face_crop * max(box[2] - box[0], box[3] - box[1])
            clean = np.ascontiguousarray(clean[max(0, int(box[1] - m)):int(box[3] + m), max(0, int(box[0] - m)):int(box[2] + m)])
        box, clean_face = _face_box(pipe.face_backend, clean)
        degraded, params = degrade(clean, args.preset, seed=args.seed * 1000 + i)
        grabbed.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        res = pipe.restore(degraded, {person: refs})
        run = grabbed["run"]
        rec = {"person": person, "photo": path.name, "clean": clean, "degraded": degraded, "box": box,
               "clean_face": clean_face, "truth": params["summary"], "final": res.image,
               "scene": grabbed["scene"], "raw": grabbed.get("raw"), "estimate": grabbed["estimate"], "jobs": run.jobs,
               "aligned": run.aligned_refs, "input": run.rgb,
               "strength": pipe.config.strength * (1.0 if run.decision is None else run.decision.strength)}
        args.cache.mkdir(parents=True, exist_ok=True)
        with open(f, "wb") as fh:
            pickle.dump(rec, fh)
        print(f"cached {f.name}: {len(run.jobs)} face(s), {time.perf_counter() - t0:.1f} s "
              f"(cpu {time.process_time() - c0:.1f} s), truth {params['summary']}", flush=True)
    pipe._refine_faces, restorer.restore = real, real_restore
    return files


def face_metrics(rec: dict, img: np.ndarray, backend) -> tuple:
    """(whole-photo PSNR, face-box PSNR, identity distance to the clean face) of ``img`` as the bench
    measures them (capped PSNR on Y; the clean photo's face box; dlib's embedding at the clean
    face's landmarks)."""
    from face2scene.bench.common import capped_psnr
    c, (x0, y0, x1, y1) = rec["clean"], rec["box"]
    e = backend.embed(img, rec["clean_face"])
    return (capped_psnr(c, img), capped_psnr(c[y0:y1, x0:x1], img[y0:y1, x0:x1], border=0),
            backend.distance(e, rec["clean_face"].embedding))


def evaluate(args, pipe, variants) -> dict:
    """{variant: [(whole gain, face gain, identity distance change), ...]} over the cached photos."""
    backend = pipe.face_backend
    res = {k: [] for k in variants}
    names = []
    for f in args.files:
        with open(f, "rb") as fh:
            rec = pickle.load(fh)
        if rec["box"] is None:
            continue
        m0 = face_metrics(rec, rec["degraded"], backend)
        line = f"{rec['person'][:12]:12s} {rec['photo'][:9]:9s} in {m0[1]:5.2f}"
        names.append(f"{rec['person']}/{rec['photo']}")
        for k, fn in variants.items():
            m = face_metrics(rec, fn(rec, pipe), backend)
            res[k].append((m[0] - m0[0], m[1] - m0[1], m[2] - m0[2]))
            line += f" | {k[:10]:10s} {m[1] - m0[1]:+5.2f} {'+' if m[2] < m0[2] else '-'}"
        print(line, flush=True)
    print(f"\npreset {args.preset}, {len(names)} faces: median gains over the degraded input (dB); "
          "id better: identity distance to the clean face below the input's")
    print(f"{'variant':24s} {'whole':>6s} {'face':>6s} {'f-w':>6s} {'id better':>9s}")
    summary = {}
    for k, v in res.items():
        a = np.array(v)
        w, fa = float(np.median(a[:, 0])), float(np.median(a[:, 1]))
        summary[k] = {"whole": w, "face": fa, "face_minus_whole": fa - w, "id_better": int((a[:, 2] < 0).sum()),
                      "n": len(a), "per_face": a.tolist()}
        print(f"{k:24s} {w:+6.2f} {fa:+6.2f} {fa - w:+6.2f} {int((a[:, 2] < 0).sum()):4d}/{len(a)}")
    return {"photos": names, "summary": summary}


def base_variants():
    """The scene restorer's face, the pipeline's paste (cached, and again), the refined face whole."""
    import face2scene.facefix as ff

    def repaste(share):
        def fn(rec, pipe):
            old = dict(ff.SCENE_FACE_SHARE)
            ff.SCENE_FACE_SHARE.clear()
            ff.SCENE_FACE_SHARE[pipe.restorer.name] = share
            try:
                return paste(rec, pipe)
            finally:
                ff.SCENE_FACE_SHARE.clear()
                ff.SCENE_FACE_SHARE.update(old)
        return fn
    return {"scene": lambda rec, pipe: rec["scene"], "final (cached)": lambda rec, pipe: rec["final"],
            "repaste": repaste(ff.fix_share("compact")), "fix whole": repaste(1.0)}


# -- candidates for a better face (``--candidates``): each replaces the face's luma in the aligned
# crop; pasted like the pipeline (paste mask, feathered), or as the change only (``delta``) ----------

def _luma(rgb):
    from face2scene.reffr import to_ycc
    return to_ycc(rgb)[..., 0]


def _with_luma(base, y):
    from face2scene.reffr import to_rgb, to_ycc
    b = to_ycc(base)
    b[..., 0] = y
    return np.clip(np.rint(to_rgb(b)), 0, 255).astype(np.uint8)


def _fft_grid(n_big):
    fy = np.fft.fftfreq(n_big)[:, None]
    fx = np.fft.fftfreq(n_big)[None, :]
    return fy, fx


def _pad(a, pad):
    import cv2
    return cv2.copyMakeBorder(a.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT101)


def data_consistency(y, s, blur, noise, max_gain=4.0):
    """The scene's face ``s`` corrected toward the photo ``y``: S + G (Y - H S) / H, G = 1 - noise² / P_R
    (P_R: radial power of the residual; the scene's error is what stands above the noise)."""
    n, pad = y.shape[0], max(8, y.shape[0] // 4)
    yp, sp = _pad(y, pad), _pad(s, pad)
    fy, fx = _fft_grid(yp.shape[0])
    f2 = fy ** 2 + fx ** 2
    H = np.exp(-2.0 * np.pi ** 2 * blur ** 2 * f2)
    R = np.fft.fft2(yp) - H * np.fft.fft2(sp)
    w = np.hanning(yp.shape[0])
    pw = np.abs(np.fft.fft2(np.real(np.fft.ifft2(R)) * w[:, None] * w[None, :])) ** 2 / (w ** 2).sum() ** 2
    idx = np.minimum((np.sqrt(f2) / 0.7072 * 48).astype(int), 47)
    pr = np.bincount(idx.ravel(), pw.ravel(), 48) / np.maximum(np.bincount(idx.ravel(), None, 48), 1)
    G = np.clip(1 - max(noise, 1e-3) ** 2 / np.maximum(pr, 1e-9), 0, 1)[idx]
    corr = np.minimum(G / np.maximum(H, 1e-3), max_gain) * R
    corr[0, 0] = 0
    return np.real(np.fft.ifft2(np.fft.fft2(sp) + corr))[pad:pad + n, pad:pad + n]


def tv_deconv(s, blur, mu, iters=8):
    """min mu/2 ||k * x - s||² + TV(x) (half-quadratic splitting, FFT), s in 0..1: the scene's
    face deblurred again by a residual Gaussian blur ``blur`` with an edge prior."""
    n, pad = s.shape[0], max(8, int(4 * blur) + 4)
    sp = _pad(s, pad)
    fy, fx = _fft_grid(sp.shape[0])
    K = np.exp(-2.0 * np.pi ** 2 * blur ** 2 * (fy ** 2 + fx ** 2))
    Dx, Dy = np.exp(2j * np.pi * fx) - 1, np.exp(2j * np.pi * fy) - 1
    D2, S, x, beta = np.abs(Dx) ** 2 + np.abs(Dy) ** 2, np.fft.fft2(sp), sp.copy(), 1.0
    for _ in range(iters):
        w = [np.sign(g) * np.maximum(np.abs(g) - 1.0 / beta, 0) for g in (np.roll(x, -1, 1) - x, np.roll(x, -1, 0) - x)]
        num = mu * K * S + beta * (np.conj(Dx) * np.fft.fft2(w[0]) + np.conj(Dy) * np.fft.fft2(w[1]))
        x = np.real(np.fft.ifft2(num / (mu * K * K + beta * D2)))
        beta *= 2.0
    return x[pad:pad + n, pad:pad + n]


def candidate_paste(rec, pipe, make, delta=False, share=1.0):
    """Each face's crop from ``make(job, scene crop, rec)`` pasted over the scene at ``share``."""
    from face2scene.facefix import paste_mask
    from face2scene.faces.align import paste_back, warp_to_crop
    out = rec["scene"].copy()
    occupied = np.zeros(out.shape[:2], np.float32)
    for r in rec["jobs"]:
        size = r.degraded_crop.shape[0]
        scene, mask = warp_to_crop(out, r.affine, size), paste_mask(size)
        change = share * rec["strength"] * (make(r, scene, rec).astype(np.float32) - scene)
        if delta:
            paste_change(out, change, r.affine, occupied, mask)
        else:
            paste_back(out, np.clip(np.rint(scene + change), 0, 255).astype(np.uint8), r.affine, occupied, crop_mask=mask)
    return out


def paste_change(image, change, affine, occupied, crop_mask):
    """``change`` (an aligned crop's difference to the photo under it) added, feathered like paste_back:
    the scene's face is not resampled out and back."""
    import cv2
    from face2scene.faces.align import affine_scale, crop_region_in_image, crop_to_region, feather_mask
    x0, y0, x1, y1 = region = crop_region_in_image(affine, change.shape[0], image.shape)
    if x1 <= x0 or y1 <= y0:
        return
    warped, cover = crop_to_region(change, affine, region)
    cover = cover * crop_to_region(crop_mask.astype(np.float32), affine, region, cv2.INTER_LINEAR)[0]
    alpha = feather_mask(cover, change.shape[0] / affine_scale(affine)) * (1.0 - occupied[y0:y1, x0:x1])
    occupied[y0:y1, x0:x1] = np.maximum(occupied[y0:y1, x0:x1], alpha)
    image[y0:y1, x0:x1] = np.clip(np.rint(image[y0:y1, x0:x1] + alpha[..., None] * warped), 0, 255).astype(np.uint8)


def candidate_variants():
    from face2scene.facefix import FaceFixSettings, paste_mask, reference_pull, refine_face
    from face2scene.faces.align import affine_scale
    from face2scene.restorers.classical import effective_noise

    def blur_of(r, rec):
        return float(rec["estimate"].blur_sigma) * affine_scale(r.affine)

    def fixed(r, scene, rec):
        return refine_face(r.degraded_crop, rec["estimate"], rec["aligned"].get(r.index, []), affine_scale(r.affine),
                           scene, 0.5, paste_mask(scene.shape[0]))

    def pull(bands, amount):
        st = FaceFixSettings(ref_bands=bands)
        return lambda r, scene, rec: _with_luma(scene, reference_pull(_luma(scene), rec["aligned"].get(r.index, []),
                                                                      amount, st))

    def dc(r, scene, rec):
        noise = effective_noise(rec["estimate"]) * 0.668
        return _with_luma(scene, data_consistency(_luma(r.degraded_crop), _luma(scene), blur_of(r, rec), noise))

    def tv(a, mu):
        return lambda r, scene, rec: _with_luma(scene, 255.0 * tv_deconv(_luma(scene) / 255.0,
                                                                         max(0.2, a * blur_of(r, rec)), mu))
    C = {
        "delta: fix 0.25": lambda rec, pipe: candidate_paste(rec, pipe, lambda r, s, q: fixed(r, s, q).crop, True, 0.25),
        "refs 1-4px 0.25": lambda rec, pipe: candidate_paste(rec, pipe, pull(((1.0, 2.0), (2.0, 4.0)), 0.25)),
        "refs 0.5-1px 0.5": lambda rec, pipe: candidate_paste(rec, pipe, pull(((0.5, 1.0),), 0.5)),
        "refs 2-8px 0.25": lambda rec, pipe: candidate_paste(rec, pipe, pull(((2.0, 4.0), (4.0, 8.0)), 0.25)),
        "data consistency": lambda rec, pipe: candidate_paste(rec, pipe, dc),
        "TV deconv 0.5b mu300": lambda rec, pipe: candidate_paste(rec, pipe, tv(0.5, 300.0)),
        "TV deconv 0.8b mu300": lambda rec, pipe: candidate_paste(rec, pipe, tv(0.8, 300.0)),
    }
    return C


def faceprior_variants(folder: Path) -> dict:
    """The learned face prior (``face2scene/models/faceprior.py``, trained by ``scripts/faceprior_train.py``)
    on the scene's face, its change pasted like the face step (paste mask, feathered, times the
    pipeline's strength): instead of the face step, and before it (the face step then runs on the
    net's face)."""
    import torch
    from face2scene.faces.align import affine_scale
    from face2scene.models.faceprior import FacePriorNet, degradation_code
    from face2scene.restorers.classical import effective_noise
    torch.set_num_threads(1)
    net = FacePriorNet.from_pretrained(folder, low_cpu_mem_usage=False).eval()
    timing = {"faces": 0, "cpu_s": 0.0}

    def make(r, scene, rec):
        est, refs = rec["estimate"], [a.crop for a in rec["aligned"].get(r.index, [])]
        code = degradation_code(effective_noise(est), float(est.blur_sigma) * affine_scale(r.affine),
                                est.jpeg_quality, bool(refs))
        c0 = time.process_time()
        out = net.refine(r.degraded_crop, scene, code, refs if net.config.in_images == 3 else [])
        timing["faces"] += 1
        timing["cpu_s"] += time.process_time() - c0
        return out

    def alone(rec, pipe):
        return candidate_paste(rec, pipe, make, delta=True) if rec["strength"] > 0 else rec["scene"]

    def then_step(rec, pipe):
        return paste({**rec, "scene": alone(rec, pipe)}, pipe)
    return {"faceprior": alone, "faceprior + step": then_step}, timing


def paste(rec, pipe) -> np.ndarray:
    """The pipeline's paste step (``_refine_faces``) again on a cached run."""
    from face2scene.pipeline import _Run
    from face2scene.progress import CancelToken, null_progress
    run = _Run(rec["input"], 1, null_progress, CancelToken())
    run.jobs, run.aligned_refs = rec["jobs"], rec["aligned"]
    run.decision = type("D", (), {"strength": rec["strength"]})()
    est = rec["estimate"]
    est.details.pop("face_fix", None)
    return pipe._refine_faces(run, rec["scene"].copy(), est)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--split", default="dev", choices=["dev", "val"])
    ap.add_argument("--preset", default="mild")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None, help="JSON of the table")
    ap.add_argument("--candidates", action="store_true", help="also the candidate faces (slower)")
    ap.add_argument("--faceprior", type=Path, default=None, help="also the learned face prior in this weights folder")
    ap.add_argument("--variants", default=None, help="only these variants (comma-separated names)")
    ap.add_argument("--flip", action="store_true", help="training caches: the mirrored photos")
    ap.add_argument("--face-crop", type=float, default=None,
                    help="training caches: only the face box grown by this many box sides each way (a different framing; ~10 %% less CPU)")
    args = ap.parse_args()
    from face2scene.pipeline import Face2ScenePipeline, PipelineConfig
    pipe = Face2ScenePipeline(PipelineConfig(device="cpu", restorer="auto", seed=args.seed))
    args.files = build_cache(args, pipe)
    fp, timing = faceprior_variants(args.faceprior) if args.faceprior else ({}, None)
    variants = {**base_variants(), **(candidate_variants() if args.candidates else {}), **fp}
    if args.variants:
        keep = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in keep if v not in variants]
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; choose from {sorted(variants)}")
        variants = {k: variants[k] for k in keep}
    out = evaluate(args, pipe, variants)
    if timing and timing["faces"]:
        out["faceprior_cpu_s_per_face"] = timing["cpu_s"] / timing["faces"]
        print(f"face prior: {timing['cpu_s'] / timing['faces']:.3f} s CPU per face (one thread)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
