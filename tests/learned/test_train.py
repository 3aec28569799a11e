"""Training plumbing: whole-group validation split, reproducible degradations, tiny resumable runs
through the CLI on a few real photos, and the learned benchmark on the result."""
import json

import numpy as np
import pytest

from face2scene.datasets import Degrader, Photo, split_photos
from face2scene.degrade import apply_params, simple_params

TINY_FADEX_CFG = {"batch": 3, "crop": 48, "max_steps": 2, "ckpt_every": 1, "log_every": 1, "val_degradations": 2,
                  "max_side": 384, "model": {"channels": [8, 16], "code_dim": 8, "blocks_per_stage": 1}}
TINY_RESTORER_CFG = {"batch": 2, "crop": 32, "face_crop": 48, "max_steps": 2, "ckpt_every": 1, "log_every": 1,
                     "val_count": 2, "val_size": 48, "max_side": 384,
                     "restorer": {"unshuffle": 2, "block_out_channels": [8, 16], "layers_per_block": 1,
                                  "cross_attention_dim": 8, "attention_head_dim": 4, "cross_attention_levels": 1},
                     "mapnet": {"dim": 8, "num_heads": 2, "pool_sizes": [1, 2, 4], "num_text_tokens": 1}}


def test_split_holds_out_whole_groups():
    photos = [Photo(f"/x/p{i}/{j}.jpg", f"ids/p{i}", True) for i in range(10) for j in range(3)]
    photos += [Photo(f"/x/s{i}.jpg", f"scenes/s{i}.jpg", False) for i in range(20)]
    train, val = split_photos(photos, 0.2, seed=0)
    assert {p.group for p in train}.isdisjoint({p.group for p in val})
    assert sum(p.is_person for p in val) == 6 and sum(not p.is_person for p in val) == 4
    train2, val2 = split_photos(list(reversed(photos)), 0.2, seed=0)  # order-independent, stable
    assert sorted(p.path for p in val) == sorted(p.path for p in val2)


def test_degradation_is_reproducible_and_logged():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    d = Degrader(["simple"])
    params = d.sample(np.random.default_rng(5))
    s = params["summary"]
    assert set(s) >= {"noise_sigma", "blur_sigma", "jpeg_quality", "scale"}
    a, b = d.apply(img, params), d.apply(img, params)
    assert np.array_equal(a, b) and a.shape == img.shape
    json.dumps(params)
    noisy = apply_params(img, simple_params(noise_sigma=10.0))
    assert 8 < float(np.std(noisy.astype(float) - img)) < 12


@pytest.mark.data
def test_tiny_training_runs_resume_and_bench(tmp_path, small_data, capsys):
    from face2scene.bench.learned import bench_learned
    from face2scene.restorers.compact import load_compact_restorer
    from face2scene.cli import main as _cli_main

    def main(argv):
        return _cli_main(["train", *argv])

    data = [str(small_data / "identities"), str(small_data / "scenes")]
    out = tmp_path / "run"
    cfg_f = tmp_path / "fadex.json"
    cfg_f.write_text(json.dumps(TINY_FADEX_CFG))
    assert main(["fadex", "--data", *data, "--out", str(out), "--config", str(cfg_f)]) == 0
    state = json.loads((out / "checkpoint_fadex" / "state.json").read_text())
    assert state["step"] == 2
    assert (out / "loss_fadex.png").stat().st_size > 1000
    files = {p.suffix for p in (out / "checkpoint_fadex").rglob("*") if p.is_file()}
    assert files <= {".json", ".safetensors"}
    # resume: two more steps continue from the checkpoint
    cfg_f.write_text(json.dumps(dict(TINY_FADEX_CFG, max_steps=4)))
    assert main(["fadex", "--data", *data, "--out", str(out), "--config", str(cfg_f)]) == 0
    assert "resumed at step 2" in capsys.readouterr().out
    assert json.loads((out / "checkpoint_fadex" / "state.json").read_text())["step"] == 4
    split = json.loads((out / "split.json").read_text())
    assert split["val"] and set(split["train"]).isdisjoint(split["val"])

    cfg_r = tmp_path / "restorer.json"
    cfg_r.write_text(json.dumps(TINY_RESTORER_CFG))
    assert main(["restorer", "--data", *data, "--out", str(out), "--fadex", str(out / "fadex"),
                 "--config", str(cfg_r)]) == 0
    final = out / "compact"
    backend = load_compact_restorer(folder=final)
    assert json.loads((final / "train_config.json").read_text())["batch"] == 2
    res = bench_learned(small_data, weights=final, n_degradations=2, per_photo=1, max_side=96, speed=False,
                        out_dir=tmp_path / "bench")
    assert res["n_images"] >= 1 and "compact + face code" in res["psnr"]
    assert (tmp_path / "bench" / "bench_learned.png").is_file()
    assert backend.restorer.config.unshuffle == 2


def test_cli_reports_bad_data_folder(tmp_path, capsys):
    from face2scene.cli import main as _cli_main

    def main(argv):
        return _cli_main(["train", *argv])

    assert main(["fadex", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_is_wired_into_the_main_cli(tmp_path, capsys):
    from face2scene.cli import main
    assert main(["train", "restorer", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                 "--fadex", str(tmp_path / "f")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.data
def test_reffr_pairs_then_guided_training(tmp_path, small_data, capsys):
    """Ref-FR pairs from the training split (resumable), FaDeX fine-tuned on them from a folder, and
    the guided restorer trained with their tokens: the whole v2 recipe, tiny."""
    from face2scene.restorers.compact import load_compact_restorer
    from face2scene.cli import main as _cli_main

    def main(argv):
        return _cli_main(["train", *argv])

    from face2scene.train.reffr_pairs import build_reffr_pairs, load_reffr_pairs
    from face2scene.datasets import list_photos, split_photos
    pairs_dir = tmp_path / "pairs"
    build_reffr_pairs([str(small_data / "identities")], pairs_dir, n_bank=3, per_photo=2, max_side=384,
                      log=lambda m: None)
    cache = load_reffr_pairs(pairs_dir)
    assert len(cache["bank"]) == 3 and cache["pairs"], "no Ref-FR pair was made"
    train, val = split_photos(list_photos([small_data / "identities"]))
    assert {e["photo"] for e in cache["pairs"]} <= {p.path for p in train}  # never the held-out split
    for e in cache["pairs"]:
        assert e["degraded"].shape == e["restored"].shape and min(e["degraded"].shape[:2]) >= 32
    n = len(list((pairs_dir / "pairs").iterdir()))
    build_reffr_pairs([str(small_data / "identities")], pairs_dir, n_bank=3, per_photo=2, max_side=384,
                      log=lambda m: None)  # resumed: nothing new
    assert len(list((pairs_dir / "pairs").iterdir())) == n

    data = [str(small_data / "identities"), str(small_data / "scenes")]
    out = tmp_path / "run"
    cfg_f = tmp_path / "fadex.json"
    cfg_f.write_text(json.dumps(dict(TINY_FADEX_CFG, reffr_pairs=str(pairs_dir), reffr_prob=1.0)))
    assert main(["fadex", "--data", *data, "--out", str(out), "--config", str(cfg_f)]) == 0
    assert "Ref-FR pairs over" in capsys.readouterr().out
    cfg_f.write_text(json.dumps(dict(TINY_FADEX_CFG, init=str(out / "fadex"), max_steps=1)))
    assert main(["fadex", "--data", *data, "--out", str(tmp_path / "run2"), "--config", str(cfg_f)]) == 0
    assert "starting from" in capsys.readouterr().out

    cfg_r = tmp_path / "restorer.json"
    rcfg = dict(TINY_RESTORER_CFG, reffr_pairs=str(pairs_dir), reffr_prob=1.0, null_prob=0.5)
    rcfg["restorer"] = dict(rcfg["restorer"], guided=True, global_condition=True)
    cfg_r.write_text(json.dumps(rcfg))
    assert main(["restorer", "--data", *data, "--out", str(out), "--fadex", str(out / "fadex"),
                 "--config", str(cfg_r)]) == 0
    log = capsys.readouterr().out
    assert "Ref-FR face pairs for the tokens" in log and '"base"' in log
    backend = load_compact_restorer(folder=out / "compact")
    assert backend.guided and backend.restorer.config.global_condition
