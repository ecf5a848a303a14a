"""Audiovisual SlowFast (Xiao et al. 2020): A→FS laterals, DropPathway, audio pathway, presets."""

import pytest
import torch

from deepvideo.models import create_model, get_model_info
from deepvideo.models.av_slowfast import DROP_PATHWAY, AudioToVisual, AVSlowFast, audio_resnet
from deepvideo.models.slowfast import SlowFast

TINY = {"width": 8, "audio_width": 0.0625, "alpha": 4, "fusion_kernel": 3}


def batch(n=2):
    torch.manual_seed(0)
    return {"rgb": torch.randn(n, 3, 8, 32, 32), "audio": torch.randn(n, 1, 32, 16)}


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_forward_backward_uses_every_parameter():
    model = AVSlowFast(3, drop_pathway=0.0, **TINY).train()
    out = model(batch())
    assert out.shape == (2, 3)
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_audio_to_visual_lateral_adds_one_vector_per_frame():
    lat = AudioToVisual(6, 4).eval()
    visual, audio = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 6, 9, 7)
    with torch.no_grad():
        added = lat(visual, audio) - visual
    assert torch.allclose(added, added[..., :1, :1].expand_as(added), atol=1e-6)  # same at every position
    with torch.no_grad():  # frame t gets the audio averaged over frequency and over its third of time
        ref = lat.conv(audio.mean(3).reshape(2, 6, 3, 3).mean(3)[..., None, None])
        ref = torch.relu(lat.norm(ref))
    assert torch.allclose(added, ref.expand_as(added), atol=1e-5)


def test_drop_pathway():
    assert DROP_PATHWAY == 0.8
    model = AVSlowFast(3, drop_pathway=0.999, **TINY)
    b = batch()
    other = dict(b, audio=torch.randn_like(b["audio"]))
    model.train()
    torch.manual_seed(1)  # the drop draw
    with torch.no_grad():
        dropped = model(b)
        torch.manual_seed(1)
        assert torch.allclose(model(other), dropped)  # the audio pathway is not used
    model.eval()  # never dropped at test time
    with torch.no_grad():
        assert not torch.allclose(model(other), model(b))
    with pytest.raises(ValueError, match="drop_pathway"):
        AVSlowFast(3, drop_pathway=1.0, **TINY)


def test_parameters_are_slowfast_plus_audio_pathway_laterals_and_head():
    with torch.device("meta"):
        av = AVSlowFast(400, **TINY)
        sf = SlowFast(400, **{k: v for k, v in TINY.items() if k != "audio_width"})
    audio = count(av.audio)
    laterals = sum(count(getattr(av, f"a2{p}{s}")) for p in "sf" for s in (2, 3))
    assert count(av) == count(sf) + audio + laterals + 400 * av.audio_features
    assert sorted(n for n, _ in av.named_children() if n.startswith("a2")) == ["a2f2", "a2f3", "a2s2", "a2s3"]


def test_audio_only_model_and_missing_audio():
    model = audio_resnet(5, width=0.0625).eval()
    assert model(batch()).shape == (2, 5)
    with pytest.raises(KeyError, match="needs batch\\['audio'\\]"):
        model({"rgb": torch.randn(1, 3, 8, 32, 32)})
    with pytest.raises(ValueError, match="log-mel"):
        model({"audio": torch.randn(1, 32, 16)})


def test_registered_presets():
    spec = get_model_info("av_slowfast_r50_4x16").spec
    assert spec.modalities == ("rgb", "audio") and (spec.audio_frames, spec.audio_mels) == (128, 80)
    small = get_model_info("audio_resnet_small").spec
    assert small.batch_keys == ("audio",)
    model = create_model("av_slowfast_small", num_classes=4)
    assert isinstance(model, AVSlowFast) and model.alpha == 8


def _seeded(cls, **kw):
    """A tiny model with seeded weights and seeded, non-trivial BN statistics (eval mode)."""
    torch.manual_seed(0)
    model = cls(3, width=8, alpha=4, fusion_kernel=3, **kw).eval()
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


# Outputs of the models above on main before SlowFast and AVSlowFast shared one stage loop
# (SlowFast.features with the after_stage hook): the refactor must not change them.
REFERENCE = {
    "sf": [[0.0028107240796089172, -0.023210786283016205, 0.02464115433394909],
           [-0.0029917918145656586, -0.02741435542702675, 0.020988324657082558]],
    "av23": [[1.4954938888549805, -4.274520397186279, 1.2473526000976562],
             [1.1407034397125244, -2.7092208862304688, 1.1160974502563477]],
    "av1": [[-0.2750197649002075, 1.98344087600708, -4.138012886047363],
            [-0.2767588496208191, 1.1246880292892456, -2.6120333671569824]],
}


def test_outputs_equal_the_reference_from_before_the_shared_stage_loop():
    g = torch.Generator().manual_seed(1)
    rgb, audio = torch.randn(2, 3, 8, 32, 32, generator=g), torch.randn(2, 1, 32, 16, generator=g)
    av = {"rgb": rgb, "audio": audio}
    with torch.no_grad():
        outs = {"sf": _seeded(SlowFast)({"rgb": rgb}),
                "av23": _seeded(AVSlowFast, audio_width=0.0625)(av),
                "av1": _seeded(AVSlowFast, audio_width=0.0625, fuse_stages=(1,))(av)}
    for name, out in outs.items():
        assert torch.allclose(out, torch.tensor(REFERENCE[name]), rtol=1e-5, atol=1e-6), name


def test_slowfast_after_stage_hook_sees_stages_1_to_3_and_can_change_them():
    model = _seeded(SlowFast)
    x = torch.randn(1, 3, 8, 32, 32)
    seen = []

    def identity(s, slow, fast):
        seen.append((s, slow.shape[1], fast.shape[1]))
        return slow, fast

    with torch.no_grad():
        plain = model({"rgb": x})
        assert torch.equal(model.forward_pathways(*model.pathways(x), identity), plain)
        assert [s for s, _, _ in seen] == [1, 2, 3]
        # the hook's output is what the next stage reads: Slow res3 input = res2 (4*8) + lateral (2*4*1)
        assert seen[0][1:] == (4 * 8 + 2 * 4 * 1, 4 * 1)
        changed = model.forward_pathways(*model.pathways(x), lambda s, a, b: (a * (s != 3), b))
    assert not torch.allclose(changed, plain)
