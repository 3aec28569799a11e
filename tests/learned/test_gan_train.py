"""The GAN restorer conditioned on the face code: at initialisation it is the plain generator
exactly (through the whole restorer path, tokens included), ``face2scene train gan`` runs a few
steps on tiny crops (finite loss, lower probe loss, resumable), and the folder it writes loads back
through ``--weights`` as the ``gan`` restorer. Tiny networks throughout; the photos are made from
the public-domain sample photo (no collection needed)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from face2scene.errors import WeightsError
from face2scene.models import FaDeXEncoder, MapNet
from face2scene.restorers import load_restorer
from face2scene.restorers.gan import GanFaceBackend, GanRestorer, load_gan_face
from face2scene.restorers.learned import LearnedRestorer
from face2scene.train.gan import conditioned_generator, frequency_l1, write_sample_dataset

from .conftest import TINY_FADEX
from .test_gan import random_image, tiny_model

TINY_TRAIN = {"batch": 2, "crop": 32, "face_crop": 48, "max_steps": 3, "ckpt_every": 3, "log_every": 1,
              "val_count": 2, "val_size": 48, "max_side": 256, "probe_batch": 2, "lr": 5e-3, "adv_weight": 0.05,
              "disc_channels": 8, "train_last": True}


@pytest.fixture
def tiny_compact(tmp_path):
    """A compact folder with a tiny FaDeX and MapNet (tokens of 6 numbers)."""
    torch.manual_seed(0)
    folder = tmp_path / "compact"
    FaDeXEncoder(**TINY_FADEX).save_pretrained(folder / "fadex")
    mapnet = MapNet(in_channels=16, dim=16, num_heads=2, token_dim=6)
    with torch.no_grad():
        mapnet.null_tokens.normal_(0, 1.0)
    mapnet.save_pretrained(folder / "mapnet")
    return folder


def test_conditioned_restorer_at_init_is_the_plain_generator_exactly(tiny_compact):
    base = tiny_model()
    gen = conditioned_generator(base, 6)
    fadex = FaDeXEncoder.from_pretrained(tiny_compact / "fadex", low_cpu_mem_usage=False)
    mapnet = MapNet.from_pretrained(tiny_compact / "mapnet", low_cpu_mem_usage=False)
    r = LearnedRestorer(GanFaceBackend(GanRestorer(gen), fadex, mapnet), "gan")
    img = random_image(24, 28)
    plain = GanRestorer(base).restore(img, None).image
    out = r.restore(img, None)
    assert out.code.source == "null" and np.array_equal(out.image, plain)
    with torch.no_grad():  # the code does reach the network once the modulation is not zero
        gen.modulation.bias.normal_(0, 0.5)
    assert not np.array_equal(r.restore(img, None).image, plain)
    with pytest.raises(ValueError, match="cond_dim"):
        conditioned_generator(gen, 7)
    assert conditioned_generator(gen, 6) is gen
    with pytest.raises(WeightsError, match="no conditioning"):
        GanFaceBackend(GanRestorer(base), fadex, mapnet)


def test_face_code_reaches_the_trained_generator(tiny_compact):
    from face2scene.estimate.learned import FaceCrops
    fadex = FaDeXEncoder.from_pretrained(tiny_compact / "fadex", low_cpu_mem_usage=False)
    mapnet = MapNet.from_pretrained(tiny_compact / "mapnet", low_cpu_mem_usage=False)
    gen = conditioned_generator(tiny_model(), 6)
    with torch.no_grad():
        gen.modulation.weight.normal_(0, 0.5)
    backend = GanFaceBackend(GanRestorer(gen), fadex, mapnet)
    face = random_image(48, 48, seed=3)
    code = backend.face_code([FaceCrops(face, np.clip(face.astype(int) + 9, 0, 255).astype(np.uint8))])
    null = backend.null_code()
    assert code.source == "face" and code.faces_used == 1 and null.source == "null"
    img = random_image(20, 24)
    a, b = (backend.restore_with_tokens(img, c, tile=16) for c in (code, null))
    assert a.shape == b.shape == img.shape and not np.array_equal(a, b)


def test_frequency_loss_sees_lost_detail():
    x = torch.rand(1, 3, 32, 32)
    smooth = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert frequency_l1(x, x) == 0 and frequency_l1(smooth, x) > 0.01


def test_train_gan_tiny_run_resumes_and_loads_back(tmp_path, tiny_compact, capsys):
    from face2scene.cli import main
    data = write_sample_dataset(tmp_path / "data")
    base_dir = tmp_path / "base"
    tiny_model().save_pretrained(base_dir)
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY_TRAIN))
    args = ["train", "gan", "--data", *data, "--out", str(out), "--base", str(base_dir), "--compact",
            str(tiny_compact), "--config", str(cfg)]
    assert main(args) == 0
    state = json.loads((out / "checkpoint_gan" / "state.json").read_text())
    hist = state["history"]
    assert state["step"] == 3 and len(hist["loss"]) == 3 and all(np.isfinite(hist["loss"]))
    assert hist["probe_step"] == [0, 3]
    assert hist["probe_loss"][1] < hist["probe_loss"][0]  # the same pixels, restored better
    final = out / "gan-face"
    assert sorted(p.name for p in final.iterdir()) == ["fadex", "generator", "mapnet", "split.json",
                                                       "train_config.json", "val_metrics.json"]
    metrics = json.loads((final / "val_metrics.json").read_text())
    assert metrics["probe_loss"]["last"] < metrics["probe_loss"]["first"]

    backend = load_gan_face(final)
    assert backend.gan.model.config.cond_dim == 6 and backend.gan.model.config.num_block == 1
    trained = backend.gan.model
    assert trained.modulation.weight.abs().sum() > 0  # trained; the trunk is the base's
    assert torch.equal(trained.body[0].rdb1.conv1.weight, tiny_model().body[0].rdb1.conv1.weight)
    r, warning = load_restorer("gan", models_dir=out)
    assert warning is None and isinstance(r, LearnedRestorer) and r.name == "gan"
    img = random_image(24, 28)
    res = r.restore(img, None)
    assert res.image.shape == img.shape and res.code.source == "null"

    # resume: one more step continues from the checkpoint
    cfg.write_text(json.dumps(dict(TINY_TRAIN, max_steps=4, adv_weight=0.05)))
    assert main(args) == 0
    assert "resumed at step 3" in capsys.readouterr().out
    assert json.loads((out / "checkpoint_gan" / "state.json").read_text())["step"] == 4

    cfg.write_text(json.dumps({"amp": "fp8"}))
    assert main(args + ["--no-resume"]) == 2
    assert "amp must be" in capsys.readouterr().err
