"""Face pairs restored by the real embedded Ref-FR, for training FaDeX (and the restorer's tokens).

FaDeX sees (degraded face, restored face). A stand-in restoration (the clean face, slightly shifted)
is not what it meets in use: the embedded Ref-FR keeps the photo's structure and colour and takes
only agreeing detail from the references, so part of the degradation survives in its output. Here
each training person photo is degraded *whole* with a few degradations drawn from a shared bank,
its largest face is found, aligned and restored by the pipeline's Ref-FR from the person's *other
training* photos, and the native-scale (degraded, restored) crops are saved as PNG with the
degradation parameters. The shared bank gives, for one degradation, several photos (positives) and,
for one photo, several degradations (content negatives).

    face2scene train reffr-pairs --data ../shared/data/identities --out runs/reffr_pairs

Only the training split (the same stable split as the trainers) is used. Resumable: pairs already
written are kept.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image

from . import common
from ..datasets import Degrader, list_photos, load_photos, split_photos


def build_reffr_pairs(data_dirs: Sequence[str], out: str | Path, n_bank: int = 24, per_photo: int = 6,
                      max_side: int = 768, val_fraction: float = 0.2, seed: int = 0,
                      presets: Sequence[str] = ("simple",), log=print) -> Path:
    from ..datasets import reffr_face_crops, reffr_pipeline
    out = Path(out)
    (out / "pairs").mkdir(parents=True, exist_ok=True)
    train, _ = split_photos(list_photos(data_dirs), val_fraction, seed)
    persons = [p for p in train if p.is_person]
    if not persons:
        raise ValueError("no person folders in the training split (need identities/<person>/ photos)")
    load_photos(persons, max_side, faces=False)
    rng = np.random.default_rng(seed)
    degrader = Degrader(presets)
    bank = [degrader.sample(rng) for _ in range(n_bank)]
    index_path = out / "index.json"
    index: Dict = {"bank": bank, "presets": list(presets), "max_side": max_side, "seed": seed, "pairs": []}
    if index_path.is_file():
        old = json.loads(index_path.read_text())
        if old.get("bank") == json.loads(json.dumps(bank)):
            index["pairs"] = old["pairs"]
    done = {(e["photo"], e["degradation"]) for e in index["pairs"]}
    pipe = reffr_pipeline()
    for i, p in enumerate(persons):
        for k in sorted(int(k) for k in rng.choice(n_bank, size=min(per_photo, n_bank), replace=False)):
            if (p.path, k) in done:
                continue
            fc = reffr_face_crops(pipe, degrader.apply(p.rgb, bank[k]), p, persons)
            if fc is None:
                continue
            stem = f"{i:03d}_{k:02d}"
            Image.fromarray(fc.degraded).save(out / "pairs" / f"{stem}_deg.png")
            Image.fromarray(fc.restored).save(out / "pairs" / f"{stem}_res.png")
            index["pairs"].append({"photo": p.path, "group": p.group, "degradation": k, "stem": stem,
                                   "size": list(fc.degraded.shape[:2])})
            common.write_json_atomic(index_path, index)
        log(f"{i + 1}/{len(persons)} photos, {len(index['pairs'])} pairs")
    common.write_json_atomic(index_path, index)
    return index_path


def load_reffr_pairs(folder: str | Path) -> Dict:
    """-> {"bank": [params...], "pairs": [{"degraded", "restored", "photo", "degradation"}...]}."""
    folder = Path(folder)
    index = json.loads((folder / "index.json").read_text())
    pairs: List[Dict] = []
    for e in index["pairs"]:
        d = np.array(Image.open(folder / "pairs" / f"{e['stem']}_deg.png", formats=["PNG"]).convert("RGB"))
        r = np.array(Image.open(folder / "pairs" / f"{e['stem']}_res.png", formats=["PNG"]).convert("RGB"))
        pairs.append(dict(e, degraded=d, restored=r))
    return {"bank": index["bank"], "pairs": pairs}
