"""Issue 9: train FacePriorNet (``face2scene/models/faceprior.py``), a small face-specific restorer
that refines the scene restorer's face in the aligned frame, on the TRAINING split's faces.

Data: the cached pipeline runs of ``scripts/facefix_faces.py`` (``build_cache``: the whole photo
degraded with a bench preset, restored by the pipeline as ``face2scene bench quality`` does; the
paste step's inputs kept). Per face: the aligned crop (the pipeline's own alignment on the
degraded photo, at native scale) of the degraded photo, the scene restorer's output, the clean
photo and the mean aligned reference, with the estimate's degradation code. Photos the pipeline
left untouched (strength 0) are not used (the face step never runs there).

    PYTHONPATH=. python scripts/faceprior_train.py --cache /tmp/fp/train/*/ --out /tmp/fp/run1 --minutes 20

Training: random 96-128 px patches centred in the paste region, horizontal flips, Charbonnier loss
on luma weighted by the paste mask (plus a floor), Adam, time-boxed; one training person held out
(``--monitor``) to pick the checkpoint (face-region luma PSNR gain over the scene's face).

Session 7 result: **it fails; nothing shipped, the pipeline is unchanged.** Numbers in
``docs/bench/faceprior_val_session7.json``.

- Data (``facefix_faces.build_cache`` on the training split, 512 px, restorer ``auto``; ~40-75 s wall
  / about 6 s CPU per photo on the shared 2-core machine at load 15-20, so cut after 25 min): mild seed 1
  (18 photos), s3diff seed 2 (22), and face-surroundings crops of the mirrored photos
  (``face_crop=0.9``, ``flip``) mild seed 11 (15) and s3diff seed 12 (16): 71 runs, 40 usable
  training faces (the rest: the held-out person, no face found, or left untouched by the gate),
  6 held-out faces of jack_dorsey.
- Two nets, 28 min wall each, run side by side (``nice -n 10``, one thread): A width 32, 6 blocks,
  unshuffle 2 (152 k parameters, 1040 steps, 304 s CPU); B width 48, 6 blocks, unshuffle 4 (361 k,
  1646 steps, 309 s CPU); batch 8 of 96 px, Adam 1e-3. Training loss 0.0190 -> 0.0180-0.0186
  (luma Charbonnier, 0..1); the held-out face gain over the scene's face never rose above zero:
  A -0.03 dB at step 100, -0.07 to -0.12 after; B -0.01 at step 100, -0.03 to -0.12 after (the
  best checkpoints are the first ones, close to the identity the net starts from).
- Validation split (``facefix_faces.py --split val --preset P --samples 8 --faceprior ...``;
  medians over faces, dB; "faceprior": the net's change pasted instead of the face step,
  "+ step": the face step then runs on the net's face):

      preset  variant                 whole   face    f-w  id better
      mild    scene restorer's face   +4.03  +3.28  -0.75   7/8
      mild    pipeline (face step)    +4.21  +3.38  -0.82   8/8
      mild    A faceprior             +3.98  +3.28  -0.70   7/8
      mild    A faceprior + step      +4.20  +3.38  -0.81   8/8
      mild    B faceprior             +4.01  +3.28  -0.73   7/8
      mild    B faceprior + step      +4.21  +3.39  -0.82   8/8
      s3diff  scene restorer's face   +0.25  +0.46  +0.21   3/8
      s3diff  pipeline (face step)    +0.24  +0.51  +0.27   3/8
      s3diff  B faceprior + step      +0.24  +0.53  +0.30   3/8

  Within ±0.05 dB of today's everywhere (the checkpoints barely move the face); the target
  (face - whole >= +1.0 dB) is ~1.8 dB away on mild. Cost: 0.08-0.15 s CPU per face (one thread).
  On s3diff 3 of 8 photos are left untouched by the gate (strength 0): the net is not applied
  there either (``rec["strength"]``), so clean / near-clean photos keep today's behaviour.
- Why, as far as measured: 40 faces and ~5 CPU-minutes are far too little to learn something the
  compact restorer (trained on the same kind of data) does not already do; the loss plateaued and
  the held-out gain got worse with more steps. What would be needed: hundreds of training faces
  (the cache costs ~6 s CPU per photo; a GPU or an overnight CPU run), and a longer training.
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
from noharm_eval import VAL_PERSONS  # noqa: E402


def face_samples(rec: dict) -> list:
    """[(degraded, scene, clean, mean reference or None, code, mask)] crops (uint8 / float32) of one
    cached run, one per refined face (the geometry the paste step uses)."""
    from face2scene.facefix import paste_mask
    from face2scene.faces.align import affine_scale, warp_to_crop
    from face2scene.models.faceprior import degradation_code
    from face2scene.restorers.classical import effective_noise
    est, out = rec["estimate"], []
    if rec["strength"] <= 0:
        return out
    for r in rec["jobs"]:
        size = r.degraded_crop.shape[0]
        refs = [a.crop for a in rec["aligned"].get(r.index, [])]
        ref = np.mean([a.astype(np.float32) for a in refs], 0).astype(np.uint8) if refs else None
        code = degradation_code(effective_noise(est), float(est.blur_sigma) * affine_scale(r.affine),
                                est.jpeg_quality, bool(refs))
        out.append((r.degraded_crop, warp_to_crop(rec["scene"], r.affine, size),
                    warp_to_crop(rec["clean"], r.affine, size), ref, code, paste_mask(size)))
    return out


def load_samples(dirs, exclude=()) -> tuple:
    """(samples, names) of every cached run under ``dirs``; validation persons refused."""
    samples, names = [], []
    for d in dirs:
        for f in sorted(Path(d).glob("*.pkl")):
            with open(f, "rb") as fh:
                rec = pickle.load(fh)
            if rec["person"] in VAL_PERSONS:
                raise SystemExit(f"{f}: {rec['person']} is a validation person; train on the training split only")
            if rec["person"] in exclude:
                continue
            for s in face_samples(rec):
                samples.append(s)
                names.append(f"{Path(d).name}/{rec['person']}/{rec['photo']}")
    return samples, names


Y_W = np.array([0.299, 0.587, 0.114], np.float32)


def batch(samples, rng, n, patch):
    import torch
    D, S, C, R, K, M = [], [], [], [], [], []
    for _ in range(n):
        deg, scene, clean, ref, code, mask = samples[rng.integers(len(samples))]
        size = deg.shape[0]
        p = min(patch, size - size % 2)
        ys, xs = np.nonzero(mask > 0.5)
        k = rng.integers(len(ys))
        y0 = int(np.clip(ys[k] - p // 2 + rng.integers(-8, 9), 0, size - p))
        x0 = int(np.clip(xs[k] - p // 2 + rng.integers(-8, 9), 0, size - p))
        sl = (slice(y0, y0 + p), slice(x0, x0 + p))
        r = ref if ref is not None else np.zeros_like(deg)
        parts = [a[sl] for a in (deg, scene, clean, r)] + [mask[sl][..., None]]
        if rng.random() < 0.5:
            parts = [a[:, ::-1] for a in parts]
        if p < patch:  # a small crop: pad to the batch's size (weight 0 there)
            parts = [np.pad(a, ((0, patch - p), (0, patch - p), (0, 0))) for a in parts]
        for lst, a in zip((D, S, C, R), parts[:4]):
            lst.append(np.ascontiguousarray(a, np.float32) / 255.0)
        M.append(np.ascontiguousarray(parts[4], np.float32))
        K.append(code)
    t = lambda L: torch.from_numpy(np.stack(L)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return t(D), t(S), t(C), t(R), torch.from_numpy(np.stack(K)), t(M)


def luma_t(x):
    return (x * __import__("torch").from_numpy(Y_W)[None, :, None, None]).sum(1, keepdim=True)


def monitor(net, samples) -> float:
    """Median face-region (paste mask) luma PSNR gain of the net's face over the scene's face."""
    from face2scene.models.faceprior import FacePriorNet  # noqa: F401  (type only)
    gains = []
    for deg, scene, clean, ref, code, mask in samples:
        out = net.refine(deg, scene, code, [ref] if ref is not None else [])
        m = mask > 0.5

        def psnr(a):
            d = (a.astype(np.float32) @ Y_W - clean.astype(np.float32) @ Y_W)[m]
            return 10 * np.log10(255.0 ** 2 / max(float((d ** 2).mean()), 1e-6))
        gains.append(psnr(out) - psnr(scene))
    return float(np.median(gains))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, nargs="+", required=True, help="folders of facefix_faces.py caches (training split)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--monitor", default="jack_dorsey", help="training person held out to pick the checkpoint")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--unshuffle", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--no-refs", action="store_true", help="no reference channel (2 input images)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch
    from face2scene.models.faceprior import FacePriorNet
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train, names = load_samples(args.cache, exclude=(args.monitor,))
    held, held_names = [], []
    for d in args.cache:  # the held-out person's faces
        for f in sorted(Path(d).glob(f"*_{args.monitor}_*.pkl")):
            with open(f, "rb") as fh:
                held += face_samples(pickle.load(fh))
            held_names.append(f"{Path(d).name}/{f.stem}")
    if not train:
        raise SystemExit("no training faces in the caches")
    print(f"{len(train)} training faces ({len(set(names))} runs), {len(held)} held-out faces ({args.monitor})", flush=True)
    net = FacePriorNet(width=args.width, blocks=args.blocks, unshuffle=args.unshuffle, in_images=2 if args.no_refs else 3)
    n_par = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    t0, c0 = time.perf_counter(), time.process_time()
    limit = args.minutes * 60
    log, best, step, run_loss = [], -1e9, 0, None
    args.out.mkdir(parents=True, exist_ok=True)
    eval_every = 100
    while step < args.max_steps and time.perf_counter() - t0 < limit:
        frac = (time.perf_counter() - t0) / limit
        for g in opt.param_groups:  # constant, then a linear decay over the last 30 %
            g["lr"] = args.lr * min(1.0, max(0.05, (1.0 - frac) / 0.3))
        net.train()
        D, S, C, R, K, M = batch(train, rng, args.batch, args.patch)
        out = net(D, S, K, None if args.no_refs else R)
        err = luma_t(out) - luma_t(C)
        w = 0.1 + M
        loss = (torch.sqrt(err * err + 1e-6) * w).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % eval_every == 0:
            net.eval()
            g = monitor(net, held) if held else float("nan")
            log.append({"step": step, "loss": run_loss, "held_gain_db": g, "wall_s": time.perf_counter() - t0,
                        "cpu_s": time.process_time() - c0})
            print(f"step {step:5d} loss {run_loss:.5f} held-out face gain {g:+.3f} dB "
                  f"({time.perf_counter() - t0:.0f} s, cpu {time.process_time() - c0:.0f} s)", flush=True)
            if g > best or not held:
                best = g
                net.save_pretrained(args.out / "weights")
    net.eval()
    g = monitor(net, held) if held else float("nan")
    if g > best or not held or not (args.out / "weights").exists():
        best = g
        net.save_pretrained(args.out / "weights")
    summary = {"steps": step, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
               "parameters": n_par, "best_held_gain_db": best, "train_faces": len(train), "train_runs": sorted(set(names)),
               "held_out": held_names, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                                               if k != "cache"}, "cache": [str(c) for c in args.cache], "log": log}
    (args.out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    print(f"done: {step} steps, {n_par} parameters, best held-out gain {best:+.3f} dB -> {args.out / 'weights'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
