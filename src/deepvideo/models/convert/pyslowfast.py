"""PySlowFast (facebookresearch/SlowFast) checkpoints -> deepvideo.

PySlowFast's ``.pyth`` files hold ``{"model_state": state_dict, "epoch": ..., ...}``
(:func:`~deepvideo.models.convert.read_state_dict` unwraps them). Its key names:

- stem ``s1.pathway{p}_stem.conv`` / ``.bn`` (``stem_helper.ResNetBasicStem``); X3D:
  ``conv_xy`` (1×3×3), ``conv`` (depthwise k×1×1), ``bn`` (``stem_helper.X3DStem``);
- stages ``s2`` .. ``s5``, block i of pathway p ``pathway{p}_res{i}`` (``resnet_helper.ResStage``):
  ``branch1`` / ``branch1_bn`` (projection shortcut, present whenever the width or the stride
  changes) and ``branch2.a``, ``a_bn``, ``b``, ``b_bn``, ``c``, ``c_bn``; X3D adds
  ``branch2.se.fc1`` / ``fc2`` (``operators.SE``) in every other block;
- a non-local block after block i: ``pathway{p}_nonlocal{i}.conv_theta`` / ``conv_phi`` /
  ``conv_g`` / ``conv_out`` and its norm ``bn`` (``norm`` in early releases)
  (``nonlocal_helper.Nonlocal``);
- SlowFast's lateral connections ``s1_fuse`` .. ``s4_fuse``: ``conv_f2s``, ``bn``
  (``video_model_builder.FuseFastToSlow``);
- heads: ``head.projection`` (``head_helper.ResNetBasicHead``, ``TransformerBasicHead``); X3D
  ``head.conv_5``, ``conv_5_bn``, ``lin_5``, ``projection`` (``head_helper.X3DHead``);
- MViT v1: ``patch_embed.proj``, ``cls_token``, ``pos_embed_spatial`` / ``_temporal`` /
  ``_class``, ``blocks.N.norm1``, ``attn.qkv`` (or ``attn.q`` / ``k`` / ``v``), ``attn.proj``,
  ``attn.pool_{q,k,v}``, ``attn.norm_{q,k,v}``, ``norm2``, ``mlp.fc1`` / ``fc2``, ``proj`` where
  the width changes, ``norm``, ``head.projection``.

The keys are renamed into PyTorchVideo's layout (whose hub models are these networks) and
converted by :mod:`.pytorchvideo`, so deepvideo's names are mapped in one place. Where the two
libraries differ:

- X3D: PySlowFast's first block of res2 keeps the width (24 -> 24) but strides, so its projection
  shortcut has a BN; PyTorchVideo's (and deepvideo's) X3D has none there. The BN is folded in:
  its scale into the shortcut conv, its shift into the bias of the block's last BN (the two
  branches are summed before the ReLU), exact with running statistics (eval mode).
- Non-local blocks stay after the res block they follow in the checkpoint; the deepvideo model
  must have them at the same places (PySlowFast's I3D-NLN config: res3 blocks 1 and 3, res4
  blocks 1, 3 and 5, as deepvideo's ``nl_i3d_r50``; other places:
  ``load_model("i3d_r50", path, nonlocal_blocks={...})``).
- MViT: the pooling norms use eps 1e-5 (``nn.LayerNorm`` in PySlowFast's MViT v1 code), set on
  the target as for PyTorchVideo. Separate ``attn.q/k/v`` are taken as projections before
  pooling (PyTorchVideo's reading of the released MViT-B weights); a model trained with
  ``MVIT.POOL_FIRST`` (pooling before the projections) cannot be represented, and the key names
  do not tell.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from deepvideo.models.convert import pytorchvideo as _ptv
from deepvideo.nn.norm import norm_scale_shift

_STEM = re.compile(r"^s1\.pathway(\d)_stem\.(.+)$")
_RES = re.compile(r"^s(\d)\.pathway(\d)_res(\d+)\.(.+)$")
_NONLOCAL = re.compile(r"^s(\d)\.pathway(\d)_nonlocal(\d+)\.(.+)$")
_FUSE = re.compile(r"^s(\d)_fuse\.(.+)$")

# PySlowFast block member -> PyTorchVideo ResBlock member (b_bn depends on the SE, see _block)
_BLOCK = {
    "branch1.": "branch1_conv.",
    "branch1_bn.": "branch1_norm.",
    "branch2.a.": "branch2.conv_a.",
    "branch2.a_bn.": "branch2.norm_a.",
    "branch2.b.": "branch2.conv_b.",
    "branch2.se.fc1.": "branch2.norm_b.1.block.0.",
    "branch2.se.fc2.": "branch2.norm_b.1.block.2.",
    "branch2.c.": "branch2.conv_c.",
    "branch2.c_bn.": "branch2.norm_c.",
}
_X3D_STEM = {"conv_xy.": "conv.conv_t.", "conv.": "conv.conv_xy.", "bn.": "norm."}
_RESNET_STEM = {"conv.": "conv.", "bn.": "norm."}
_X3D_HEAD = {
    "conv_5.": "pool.pre_conv.",
    "conv_5_bn.": "pool.pre_norm.",
    "lin_5.": "pool.post_conv.",
    "lin_5_bn.": "pool.post_norm.",  # BN_LIN5: deepvideo's X3D head has none, reported as unexpected
    "projection.": "proj.",
}
_NONLOCAL_PARTS = {
    "conv_theta.": "theta.",
    "conv_phi.": "phi.",
    "conv_g.": "g.",
    "conv_out.": "out.",
    "bn.": "norm.",
    "norm.": "norm.",
}
_MVIT_TOP = {
    "cls_token": "cls_positional_encoding.cls_token",
    "pos_embed_spatial": "cls_positional_encoding.pos_embed_spatial",
    "pos_embed_temporal": "cls_positional_encoding.pos_embed_temporal",
    "pos_embed_class": "cls_positional_encoding.pos_embed_class",
}
_MVIT_PREFIX = {
    "patch_embed.proj.": "patch_embed.patch_model.",
    "norm.": "norm_embed.",
    "head.projection.": "head.proj.",
}
_BN_EPS = 1e-5  # PySlowFast's BatchNorm3d eps (BN.EPSILON)
_NORM_STATS = ("weight", "bias", "running_mean", "running_var")


def _is_mvit(keys: set[str]) -> bool:
    return "patch_embed.proj.weight" in keys and any(k.startswith(("cls_token", "pos_embed")) for k in keys)


def looks_like(keys: set[str]) -> bool:
    return any(_STEM.match(k) or _RES.match(k) for k in keys) or _is_mvit(keys)


def _prefix_map(rest: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old) :]
    return None


def _block(rest: str, has_se: bool) -> str:
    if rest.startswith("branch2.b_bn."):
        return ("branch2.norm_b.0." if has_se else "branch2.norm_b.") + rest[len("branch2.b_bn.") :]
    return _prefix_map(rest, _BLOCK) or rest


def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    if _is_mvit(set(sd)):
        return _ptv.convert(_mvit_to_ptv(sd), model)
    nonlocal_sd = {k: v for k, v in sd.items() if _NONLOCAL.match(k)}
    rest = {k: v for k, v in sd.items() if k not in nonlocal_sd}
    multipath = any(m and m.group(2) != "0" for m in map(_RES.match, rest))
    ptv = _to_ptv(rest, multipath)
    if "blocks.0.conv.conv_t.weight" in ptv:
        _fold_x3d_shortcut_norms(ptv)
    out = _ptv.convert(ptv, model)
    if not multipath:
        out = _place_nonlocal(out, nonlocal_sd, model)
    else:
        out.update(nonlocal_sd)  # deepvideo's SlowFast has no non-local blocks: reported as unexpected
    return out


def _to_ptv(sd: dict[str, torch.Tensor], multipath: bool) -> dict[str, torch.Tensor]:
    """Rename ResNet / SlowFast / X3D keys into PyTorchVideo's (stages ``blocks.1..4``)."""
    x3d = "s1.pathway0_stem.conv_xy.weight" in sd
    se_blocks = {k.split(".branch2.se.")[0] for k in sd if ".branch2.se." in k}
    head_block = 6 if multipath else 5
    out = {}
    for key, value in sd.items():
        new = None
        if m := _STEM.match(key):
            p, rest = m.groups()
            part = _prefix_map(rest, _X3D_STEM if x3d else _RESNET_STEM)
            if part is not None:
                new = f"blocks.0.multipathway_blocks.{p}.{part}" if multipath else f"blocks.0.{part}"
        elif m := _RES.match(key):
            s, p, i, rest = m.groups()
            stage = int(s) - 1
            block = _block(rest, key.split(".branch2.")[0] in se_blocks)
            path = f"multipathway_blocks.{p}." if multipath else ""
            new = f"blocks.{stage}.{path}res_blocks.{i}.{block}"
        elif m := _FUSE.match(key):
            s, rest = m.groups()
            part = _prefix_map(rest, {"conv_f2s.": "conv_fast_to_slow.", "bn.": "norm."})
            if part is not None:
                new = f"blocks.{int(s) - 1}.multipathway_fusion.{part}"
        elif key.startswith("head."):
            part = _prefix_map(key[len("head.") :], _X3D_HEAD if x3d else {"projection.": "proj."})
            if part is not None:
                new = f"blocks.{head_block}.{part}"
        out[new or key] = value  # anything else is left for the key check to report
    return out


def _fold_x3d_shortcut_norms(sd: dict[str, torch.Tensor]) -> None:
    """PyTorchVideo's X3D has no BN on a shortcut between equal widths: fold PySlowFast's in."""
    for key in [k for k in sd if k.endswith(".branch1_norm.weight")]:
        block = key[: -len("branch1_norm.weight")]
        conv = sd.get(block + "branch1_conv.weight")
        if conv is None or conv.shape[0] != conv.shape[1] or block + "branch2.norm_c.bias" not in sd:
            continue
        bn = {n: sd.pop(f"{block}branch1_norm.{n}") for n in _NORM_STATS}
        sd.pop(f"{block}branch1_norm.num_batches_tracked", None)
        scale, shift = norm_scale_shift(*(bn[n].double() for n in _NORM_STATS), _BN_EPS)
        sd[block + "branch1_conv.weight"] = (conv.double() * scale.view(-1, 1, 1, 1, 1)).to(conv.dtype)
        bias = sd[block + "branch2.norm_c.bias"]
        sd[block + "branch2.norm_c.bias"] = (bias.double() + shift).to(bias.dtype)


def _place_nonlocal(
    out: dict[str, torch.Tensor], nonlocal_sd: dict[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    """Res block i of a stage -> its index in the deepvideo stage (non-local blocks take indices),
    and the non-local block after res block i -> the one following it in the model."""
    from deepvideo.nn.nonlocal_block import NonLocal3d

    ckpt: dict[int, set[int]] = {}
    for key in nonlocal_sd:
        s, _, i, _ = _NONLOCAL.match(key).groups()
        ckpt.setdefault(int(s) - 1, set()).add(int(i))
    res_index: dict[int, list[int]] = {}
    nl_index: dict[int, dict[int, int]] = {}
    for layer in range(1, 5):
        stage = getattr(model, f"layer{layer}", None)
        if not isinstance(stage, nn.Sequential):
            continue
        res_index[layer], nl_index[layer] = [], {}
        for idx, child in enumerate(stage):
            if isinstance(child, NonLocal3d) and res_index[layer]:
                nl_index[layer][len(res_index[layer]) - 1] = idx
            else:
                res_index[layer].append(idx)
    target = {layer: set(pos) for layer, pos in nl_index.items() if pos}
    if ckpt != target:
        from deepvideo.models.convert import ConversionError

        def fmt(d: dict[int, set[int]]) -> str:  # as bottleneck_resnet's nonlocal_blocks (stage 0..3)
            return "{" + ", ".join(f"{k - 1}: {tuple(sorted(v))}" for k, v in sorted(d.items())) + "}"

        name = getattr(model, "model_name", type(model).__name__)
        hint = (
            f"build the model to match, e.g. load_model('i3d_r50', path, nonlocal_blocks={fmt(ckpt)})"
            if ckpt
            else "use a model without non-local blocks (e.g. i3d_r50)"
        )
        raise ConversionError(
            f"pyslowfast weights do not fit model {name!r}: non-local blocks after res blocks "
            f"{fmt(ckpt)} in the checkpoint, {fmt(target)} in the model (stage: blocks); {hint}"
        )
    if not target and all(pos == list(range(len(pos))) for pos in res_index.values()):
        return out
    placed = {}
    for key, value in out.items():
        m = re.match(r"^layer(\d)\.(\d+)\.(.+)$", key)
        if m and int(m.group(1)) in res_index and int(m.group(2)) < len(res_index[int(m.group(1))]):
            layer, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            key = f"layer{layer}.{res_index[layer][j]}.{rest}"
        placed[key] = value
    for key, value in nonlocal_sd.items():
        s, _, i, rest = _NONLOCAL.match(key).groups()
        layer = int(s) - 1
        part = _prefix_map(rest, _NONLOCAL_PARTS) or rest
        placed[f"layer{layer}.{nl_index[layer][int(i)]}.{part}"] = value
    return placed


def _mvit_to_ptv(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        if key in _MVIT_TOP:
            new = _MVIT_TOP[key]
        else:
            new = _prefix_map(key, _MVIT_PREFIX)
        out[new or key] = value
    return out
