"""Parameters and FLOPs against the published figures the registry holds (PAPERS.md §9).

FLOPs are multiply-adds per view, counted on the meta device at the published test clip and
crop of each preset (``ModelInfo.published``). The PySlowFast zoo counts normalization layers
the fvcore training-mode way (``count_norms=True``); convolutions alone are within 2% for the
ResNets.
"""

import pytest
import torch
from torch import nn

from deepvideo.models import get_model_info, list_models
from deepvideo.models.complexity import count_flops, count_parameters, profile_model

PUBLISHED = [i.name for i in list_models() if i.published is not None]


def test_published_figures_cover_the_zoos():
    """Every preset of the PySlowFast zoo, torchvision's counted presets and the papers' tables."""
    expected = {"c2d_r50", "slowfast_r50", "x3d_xs", "mvit_v1_b", "mvit_v2_s", "r3d_18", "swin3d_t"}
    assert expected <= set(PUBLISHED)
    sources = {get_model_info(n).published.source for n in PUBLISHED}
    assert {"PySlowFast zoo", "torchvision", "Tran et al. 2018"} <= sources


@pytest.mark.parametrize("name", PUBLISHED)
def test_params_and_flops_match_the_published_figures(name):
    pub = get_model_info(name).published
    p = profile_model(name, frames=pub.frames, crop=pub.crop, count_norms=True)
    assert p.mparams == pytest.approx(pub.params_m, rel=0.01)
    if pub.gflops is not None:
        assert p.gflops == pytest.approx(pub.gflops, rel=0.05)
    shape = next(iter(p.input_shape.values()))
    assert shape[2:] == (pub.frames, pub.crop, pub.crop)


def test_mvit_v2_counts_the_architectures_attention():
    """The relative-position bias rides in the attention's head dimension at run time; the count
    is still the architecture's (torchvision's published figures), with or without norms."""
    pub = get_model_info("mvit_v2_s").published
    p = profile_model("mvit_v2_s", count_norms=True)
    assert p.mparams == pytest.approx(pub.params_m, rel=0.01)
    assert p.gflops == pytest.approx(pub.gflops, rel=0.05)
    assert p.gflops == pytest.approx(profile_model("mvit_v2_s").gflops, rel=0.01)


def test_counts_by_hand():
    conv = nn.Conv3d(4, 8, 3, padding=1, bias=False)
    flops, by_op, _ = count_flops(conv, torch.zeros(1, 4, 2, 5, 5))
    assert flops == 8 * 2 * 5 * 5 * 4 * 27 and by_op == {"convolution": flops}
    lin = nn.Linear(16, 10)
    assert count_flops(lin, torch.zeros(3, 16))[0] == 3 * 16 * 10
    bn = nn.Sequential(nn.Conv3d(2, 2, 1, bias=False), nn.BatchNorm3d(2))
    f_plain = count_flops(bn, torch.zeros(1, 2, 1, 2, 2))[0]
    f_norm = count_flops(bn, torch.zeros(1, 2, 1, 2, 2), count_norms=True)[0]
    assert f_plain == 2 * 2 * 4 and f_norm - f_plain == 5 * 8


def test_attention_matmuls_are_counted():
    from deepvideo.nn.attention import MultiHeadSelfAttention

    attn = MultiHeadSelfAttention(16, 2)
    flops, by_op, _ = count_flops(attn, torch.zeros(1, 10, 16))
    linears = 10 * 16 * 48 + 10 * 16 * 16
    qk_av = 2 * (10 * 10 * 16)  # q k^T and attn v over all heads
    assert flops == linears + qk_av, by_op


def test_profile_of_a_module_and_meta_default():
    p = profile_model("r3d_18")
    assert p.params == 33_371_472  # torchvision's r3d_18 with 400 classes
    assert p.gflops == pytest.approx(40.70, rel=0.01)  # torchvision reports 40.697 GFLOPS at 16x112
    assert set(p.by_module) >= {"stem", "layer1", "head"} and sum(p.by_module.values()) == p.flops
    small = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 5))
    small.input_spec = None
    assert count_parameters(small) == 96 * 5 + 5
