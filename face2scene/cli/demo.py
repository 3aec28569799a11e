"""``face2scene demo``: the quick start. Degrades the bundled public-domain sample with a known,
logged degradation, restores it end to end with the embedded default and says where the
results are and how well the degradation was recovered."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..options import DEVICES


def register(subparsers) -> argparse.ArgumentParser:
    d = subparsers.add_parser("demo", help="restore the bundled public-domain sample end to end")
    d.add_argument("-o", "--output", type=Path, default=Path("out/demo"))
    d.add_argument("--device", default="auto", choices=DEVICES)
    d.set_defaults(func=lambda args: run_demo(args.output, device=args.device))
    return d


def run_demo(out_dir: Path, device: str = "auto") -> int:
    from ..degrade import degrade
    from ..io import save_image_atomic, save_json_atomic
    from ..metrics import psnr
    from ..pipeline import Face2ScenePipeline, PipelineConfig
    from ..samples import SAMPLE_CREDIT, load_sample

    out_dir = Path(out_dir)
    clean = load_sample()
    degraded, params = degrade(clean, "mild", seed=7)
    # The only public-domain photo of this person that we can ship is the sample itself, so the
    # demo's reference is the clean original mirrored left-right (a different "pose" to align).
    # With your own photos, pass other pictures of each person: --ref NAME=FOLDER.
    reference = np.ascontiguousarray(clean[:, ::-1])
    print(f"Sample: {SAMPLE_CREDIT}")
    print("Restoring (embedded default: dlib faces, reference-guided face restoration, analytic FaDeX, "
          "then the shipped compact restorer conditioned by the face's degradation code)...", flush=True)

    def progress(stage, fraction, message=""):
        if fraction >= 1.0 and message == "done":
            print(f"  {stage:8s} done", flush=True)

    pipe = Face2ScenePipeline(PipelineConfig(device=device))
    result = pipe.restore(degraded, {"astronaut": [reference]}, progress=progress)
    side = np.concatenate([degraded, result.image, clean], axis=1)
    paths = {
        "degraded": save_image_atomic(out_dir / "degraded.png", degraded),
        "restored": save_image_atomic(out_dir / "restored.png", result.image),
        "comparison": save_image_atomic(out_dir / "comparison_degraded_restored_original.png", side),
    }
    report = {"sample": SAMPLE_CREDIT, "true_degradation": params["summary"], **result.to_json(),
              "psnr_degraded": psnr(clean, degraded), "psnr_restored": psnr(clean, result.image)}
    paths["report"] = save_json_atomic(out_dir / "report.json", report)
    t, e = params["summary"], result.degradation
    q = lambda v: "none" if v is None else f"{v:.0f}"
    print(f"\nDegradation estimated from the face ({e.source}) vs the truth:")
    print(f"  noise σ {e.noise_sigma:5.1f}  (true {t['noise_sigma']:.1f})")
    print(f"  blur σ  {e.blur_sigma:5.2f}  (true {t['blur_sigma']:.2f}) px")
    print(f"  JPEG q  {q(e.jpeg_quality):>5}  (true {q(t['jpeg_quality'])})")
    print(f"Scene restorer: {pipe.restorer.description} "
          f"(code: {result.backends.code or 'n/a'})")
    print(f"PSNR vs the original: degraded {report['psnr_degraded']:.2f} dB -> restored {report['psnr_restored']:.2f} dB")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print("\nResults:")
    for k, p in paths.items():
        print(f"  {k:10s} {Path(p).resolve()}")
    return 0
