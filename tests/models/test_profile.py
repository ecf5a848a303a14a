"""Parameters and FLOPs against the published zoo figures (PAPERS.md §9).

FLOPs are multiply-adds per view, counted on the meta device; the ResNet family is measured
at 256² (the zoo's test crop: short side 256), X3D-XS/S at 182², M at 256², L at 356²,
MViT at 224². The zoo counts normalization layers the fvcore training-mode way
(``count_norms=True``); convolutions alone are within 2% for the ResNets.
"""

import pytest
import torch
from torch import nn

from deepvideo.models.profile import count_flops, count_parameters, profile_model

# name, frames, crop, params (M), GFLOPs
ZOO = [
    ("c2d_r50", 8, 256, 24.33, 25.89),
    ("i3d_r50", 8, 256, 28.04, 37.53),
    ("slow_r50_4x16", 4, 256, 32.45, 27.55),
    ("slow_r50", 8, 256, 32.45, 54.52),
    ("slowfast_r50_4x16", 32, 256, 34.48, 36.69),
    ("slowfast_r50", 32, 256, 34.57, 65.71),
    ("slowfast_r101", 32, 256, 62.83, 127.20),
    ("csn_r101", 32, 256, 22.21, 75.62),
    ("r2plus1d_r50", 16, 256, 28.11, 76.45),
    ("x3d_xs", 4, 182, 3.79, 0.91),
    ("x3d_s", 13, 182, 3.79, 2.96),
    ("x3d_m", 16, 256, 3.79, 6.72),
    ("x3d_l", 16, 356, 6.15, 26.64),
    ("mvit_v1_b", 16, 224, 36.61, 70.80),
]


@pytest.mark.parametrize("name,frames,crop,mparams,gflops", ZOO)
def test_zoo_params_and_flops(name, frames, crop, mparams, gflops):
    p = profile_model(name, frames=frames, crop=crop, count_norms=True)
    assert p.mparams == pytest.approx(mparams, rel=0.01)
    assert p.gflops == pytest.approx(gflops, rel=0.05)
    assert p.input_shape["rgb"] == (1, 3, frames, crop, crop)


def test_mvit_v2_counts_the_architectures_attention():
    """The relative-position bias rides in the attention's head dimension at run time; the count is
    still the paper's (torchvision: 34.54 M, 64.22 GFLOPs at 16x224²)."""
    p = profile_model("mvit_v2_s", count_norms=True)
    assert p.mparams == pytest.approx(34.54, rel=0.01)
    assert p.gflops == pytest.approx(64.22, rel=0.05)
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
