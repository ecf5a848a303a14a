"""PyTorchVideo (and PySlowFast-trained) checkpoints -> deepvideo.

PyTorchVideo nests everything under ``blocks.i``: the stem ``blocks.0``, stages with
``res_blocks.j`` (``branch1_conv/norm`` shortcut, ``branch2.conv_a..norm_c``), a head with
``proj``; SlowFast wraps the pathways in ``multipathway_blocks.p`` and the lateral connection in
``multipathway_fusion``; X3D's head pools through ``pool.pre_conv/post_conv``; MViT keeps q, k,
v as separate linears (deepvideo fuses them into ``qkv``) and its pooling norms use eps 1e-5
(the converter sets that on the target model; the ``mvit_base_16x4`` preset has it built in).
"""

from __future__ import annotations

import re

import torch
from torch import nn

_BRANCH = [
    (".branch1_conv.", ".shortcut.conv."),
    (".branch1_norm.", ".shortcut.norm."),
    (".branch2.norm_b.0.", ".norm_b."),
    (".branch2.norm_b.1.block.0.", ".se.fc1."),
    (".branch2.norm_b.1.block.2.", ".se.fc2."),
    (".branch2.conv_b.conv_t.", ".conv_b.0."),
    (".branch2.conv_b.norm.", ".conv_b.1."),
    (".branch2.conv_b.conv_xy.", ".conv_b.3."),
    (".branch2.", "."),
]


def looks_like(keys: set[str]) -> bool:
    return (
        any(".res_blocks." in k for k in keys)
        or "patch_embed.patch_model.weight" in keys
        or any(k.startswith("blocks.0.multipathway_blocks") for k in keys)
    )


def _block(rest: str) -> str:
    for old, new in _BRANCH:
        if old in rest:
            return rest.replace(old, new, 1)
    return rest


def convert(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    if "patch_embed.patch_model.weight" in sd:
        # PyTorchVideo normalizes pooled q/k/v with LayerNorm(eps=1e-5) (torchvision: 1e-6)
        for name, mod in model.named_modules():
            if name.endswith("norm_act.0") and isinstance(mod, nn.LayerNorm):
                mod.eps = 1e-5
        return _mvit(sd)
    if any(".multipathway_blocks." in k for k in sd):
        return _slowfast(sd)
    stage_ids = sorted({int(k.split(".")[1]) for k in sd if ".res_blocks." in k})
    layer_of = {b: i + 1 for i, b in enumerate(stage_ids)}
    x3d = "blocks.0.conv.conv_t.weight" in sd
    out = {}
    for key, value in sd.items():
        m = re.match(r"^blocks\.(\d+)\.(.+)$", key)
        if m is None:
            out[key] = value
            continue
        b, rest = int(m.group(1)), m.group(2)
        if b == 0:
            if x3d:
                rest = (
                    rest.replace("conv.conv_t.", "0.").replace("conv.conv_xy.", "1.").replace("norm.", "2.")
                )
            else:
                rest = rest.replace("conv.", "0.", 1).replace("norm.", "1.", 1)
            new = "stem." + rest
        elif b in layer_of:
            r = re.match(r"^res_blocks\.(\d+)(\..+)$", rest)
            new = f"layer{layer_of[b]}.{r.group(1)}{_block(r.group(2))}"
        else:  # head
            for old, repl in (
                ("pool.pre_conv.", "conv_pre."),
                ("pool.pre_norm.", "norm_pre."),
                ("pool.post_conv.", "conv_post."),
                ("proj.", "fc."),
            ):
                rest = rest.replace(old, repl)
            new = "head." + rest
        out[new] = value
    return out


def _slowfast(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        m = re.match(r"^blocks\.(\d+)\.(.+)$", key)
        b, rest = int(m.group(1)), m.group(2)
        path = ("slow", "fast")
        if rest.startswith("multipathway_fusion."):
            rest = rest[len("multipathway_fusion.") :].replace("conv_fast_to_slow.", "conv.")
            new = f"fuse{b}.{rest}"
        elif rest.startswith("multipathway_blocks."):
            p, rest = re.match(r"^multipathway_blocks\.(\d)\.(.+)$", rest).groups()
            if b == 0:
                new = f"{path[int(p)]}_stem." + rest.replace("conv.", "0.", 1).replace("norm.", "1.", 1)
            else:
                j, tail = re.match(r"^res_blocks\.(\d+)(\..+)$", rest).groups()
                new = f"{path[int(p)]}_layer{b}.{j}{_block(tail)}"
        else:
            new = rest.replace("proj.", "fc.")
        out[new] = value
    return out


def _mvit(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    fixed = {
        "patch_embed.patch_model.weight": "conv_proj.weight",
        "patch_embed.patch_model.bias": "conv_proj.bias",
        "cls_positional_encoding.cls_token": "pos_encoding.class_token",
        "cls_positional_encoding.pos_embed_spatial": "pos_encoding.spatial_pos",
        "cls_positional_encoding.pos_embed_temporal": "pos_encoding.temporal_pos",
        "cls_positional_encoding.pos_embed_class": "pos_encoding.class_pos",
        "norm_embed.weight": "norm.weight",
        "norm_embed.bias": "norm.bias",
        "head.proj.weight": "head.1.weight",
        "head.proj.bias": "head.1.bias",
    }
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key in fixed:
            out[fixed[key]] = (
                value.reshape(-1) if value.dim() == 3 and value.shape[1] == 1 else value.squeeze(0)
            )
            continue
        m = re.match(r"^(blocks\.\d+\.)(.+)$", key)
        if m is None:
            out[key] = value
            continue
        pre, rest = m.groups()
        q = re.match(r"^attn\.([qkv])\.(weight|bias)$", rest)
        if q:
            qkv.setdefault(pre + q.group(2), {})[q.group(1)] = value
            continue
        for old, new in (
            ("attn.proj.", "attn.project.0."),
            ("mlp.fc1.", "mlp.0."),
            ("mlp.fc2.", "mlp.3."),
            ("attn.pool_q.", "attn.pool_q.pool."),
            ("attn.pool_k.", "attn.pool_k.pool."),
            ("attn.pool_v.", "attn.pool_v.pool."),
            ("attn.norm_q.", "attn.pool_q.norm_act.0."),
            ("attn.norm_k.", "attn.pool_k.norm_act.0."),
            ("attn.norm_v.", "attn.pool_v.norm_act.0."),
            ("proj.", "project."),
        ):
            if rest.startswith(old):
                rest = new + rest[len(old) :]
                break
        out[pre + rest] = value
    for pre_kind, parts in qkv.items():
        pre, kind = pre_kind.rsplit(".", 1)[0] + ".", pre_kind.rsplit(".", 1)[1]
        out[f"{pre}attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out
