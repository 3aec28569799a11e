import pytest
import torch

from face2scene.models import CompactRestorer, FaDeXEncoder, MapNet

TINY_FADEX = dict(channels=(8, 16, 16), code_dim=16, blocks_per_stage=1)
TINY_RESTORER = dict(unshuffle=2, block_out_channels=(16, 32), layers_per_block=1, cross_attention_dim=16,
                     attention_head_dim=8, cross_attention_levels=1, norm_num_groups=8)


def randomize_output(restorer: CompactRestorer, seed: int = 0) -> CompactRestorer:
    """The restorer starts as the identity (zero output conv); give it random output weights so the
    conditioning is observable in an untrained model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = restorer.unet.conv_out.weight
        w.copy_(torch.randn(w.shape, generator=g) * 0.05)
    return restorer


@pytest.fixture
def tiny_models():
    torch.manual_seed(0)
    fadex = FaDeXEncoder(**TINY_FADEX).eval()
    restorer = randomize_output(CompactRestorer(**TINY_RESTORER)).eval()
    mapnet = MapNet(in_channels=16, dim=16, num_heads=2, token_dim=16).eval()
    with torch.no_grad():  # non-trivial null code
        mapnet.null_tokens.normal_(0, 1.0)
    return fadex, mapnet, restorer


@pytest.fixture
def small_data(tmp_path, identities, shared_data):
    """A few real photos linked (not copied) into a temp folder: 3 persons x 2 photos + 4 scenes."""
    root = tmp_path / "data"
    for name in sorted(identities)[:3]:
        (root / "identities" / name).mkdir(parents=True)
        for p in identities[name][:2]:
            (root / "identities" / name / p.name).symlink_to(p)
    (root / "scenes").mkdir(parents=True)
    for p in sorted((shared_data / "scenes").iterdir())[:4]:
        (root / "scenes" / p.name).symlink_to(p)
    return root
