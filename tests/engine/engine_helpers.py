"""Shared by the engine tests: a tiny registered model, tiny real videos, tiny recipes.

Subprocess runs load this file through ``model.imports=[<this file>]``, which registers
the test models there too; registering twice in one process is guarded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.models.registry import register_model
from deepvideo.spec import InputSpec

HERE = Path(__file__).resolve()
TINY_SPEC = InputSpec(
    modalities=("rgb",), num_frames=4, crop_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)
)
TINY_MODEL = "engine_test_tiny3d"
TINY_BN_MODEL = "engine_test_tiny3d_bn"
SLOW_ENV = "DEEPVIDEO_TEST_SLOW_FORWARD"


class TinyNet(nn.Module):
    """conv3d -> (BN) -> ReLU -> global pool -> linear; optional aux head, dense logits, dropout."""

    def __init__(
        self,
        num_classes: int,
        width: int = 4,
        bn: bool = False,
        aux: bool = False,
        dense: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Conv3d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm3d(width) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)
        self.aux_head = nn.Linear(width, num_classes) if aux else None
        self.dense = dense

    def forward(self, batch: dict):
        if SLOW_ENV in os.environ:  # lets the SIGKILL test land mid-run on any machine speed
            time.sleep(float(os.environ[SLOW_ENV]))
        x = F.relu(self.norm(self.stem(batch["rgb"])))
        if self.dense:
            feats = x.mean(dim=(3, 4)).transpose(1, 2)  # [N,T,C]
            return self.head(self.drop(feats)).transpose(1, 2)  # [N,K,T]
        feats = self.drop(x.mean(dim=(2, 3, 4)))
        logits = self.head(feats)
        if self.aux_head is not None and self.training:
            return {"logits": logits, "aux_pool": self.aux_head(feats)}
        return logits


def tiny_net(num_classes: int = 2, **kw) -> TinyNet:
    return TinyNet(num_classes, **kw)


for _name, _kw in ((TINY_MODEL, {}), (TINY_BN_MODEL, {"bn": True})):
    try:
        register_model(_name, tiny_net, TINY_SPEC, paper="test", summary="engine test model", **_kw)
    except ValueError:  # already registered in this process
        pass


def class_frames(label: int, frames: int = 12, size: int = 24, seed: int = 0) -> np.ndarray:
    """uint8 [T,H,W,3] frames whose colour depends on the class (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((frames, size, size, 3), np.uint8)
    base[..., label % 3] = 200
    noise = rng.integers(0, 40, size=base.shape, dtype=np.uint8)
    return base + noise


def make_videos(
    root: Path, classes: int = 2, per_class: int = 4, frames: int = 12, size: int = 24
) -> DatasetIndex:
    """Write tiny H.264 videos ``root/<class>/v<i>.mp4`` and return their index."""
    from deepvideo.io import write_video

    names = [f"class{c}" for c in range(classes)]
    records = []
    for c, name in enumerate(names):
        for i in range(per_class):
            path = root / name / f"v{i}.mp4"
            if not path.exists():
                write_video(path, class_frames(c, frames, size, seed=c * 100 + i), fps=10, gop=4)
            records.append(VideoRecord(str(path), c, num_frames=frames, fps=10.0))
    return DatasetIndex(records, names)


def simple_sampler(num_frames_per_clip: int = 4):
    """A stand-in for data.sampling: random (train) start, contiguous frames."""

    def sample(num_frames: int, rng: np.random.Generator) -> dict:
        start = int(rng.integers(0, max(1, num_frames - num_frames_per_clip + 1)))
        idx = (start + np.arange(num_frames_per_clip)) % num_frames
        return {"rgb": idx[None].astype(np.int64)}

    return sample


def simple_transform(crop: int = 16):
    """A stand-in for data.transforms: random crop + normalize, [T,H,W,3] -> [3,T,h,w]."""

    def transform(sample: dict, rng: np.random.Generator) -> dict:
        rgb = sample["rgb"]
        h, w = rgb.shape[1:3]
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        clip = rgb[:, y : y + crop, x : x + crop].permute(3, 0, 1, 2).float() / 255.0
        return {"rgb": (clip - 0.5) / 0.25}

    return transform


def write_recipe(path: Path, video_root: Path, out_dir: Path, **sections) -> Path:
    """A tiny recipe training TINY_MODEL on the videos of ``video_root`` (folder format)."""
    cfg = {
        "name": "tiny",
        "output_dir": str(out_dir),
        "seed": 3,
        "deterministic": True,
        "model": {"name": TINY_MODEL, "imports": [str(HERE)], "spec": {"crop_size": 16}},
        "data": {"train": {"format": "folder", "root": str(video_root)}, "num_workers": 0},
        "train": {
            "epochs": 2,
            "batch_size": 4,
            "lr": 0.05,
            "schedule": "cosine",
            "warmup_epochs": 0.5,
            "amp": "none",
            "log_every": 1,
        },
    }
    for key, value in sections.items():
        cfg.setdefault(key, {})
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def state_of(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(run_dir) / "checkpoints" / "last" / "model.safetensors"))


class TensorClips(torch.utils.data.Dataset):
    """In-memory clips for fast engine tests; keys are ``index`` or ``(index, epoch)``.

    Class c has mean ``c`` in channel c; each item adds noise drawn from ``(seed, epoch, index)``.
    """

    def __init__(self, n: int = 16, classes: int = 2, frames: int = 4, size: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % classes
        self.x = torch.randn(n, 3, frames, size, size, generator=g) * 0.5
        for i, c in enumerate(self.labels.tolist()):
            self.x[i, c % 3] += 1.5
        self.classes = [f"class{c}" for c in range(classes)]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key) -> dict:
        i, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 10_007 + i)
        return {
            "rgb": self.x[i] + 0.1 * torch.randn(self.x[i].shape, generator=g),
            "label": int(self.labels[i]),
            "index": i,
        }


def train_single_and_ddp(single: Path, ddp: Path, timeout: float = 240) -> tuple[str, str]:
    """Train recipe ``single`` in one process and ``ddp`` under a real 2-process ``torchrun``
    (gloo), side by side; returns their stdouts, failing with a process's stderr if it fails."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    one = subprocess.Popen([sys.executable, "-m", "deepvideo", "train", str(single)], **run)
    two = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                            "--standalone", "-m", "deepvideo", "train", str(ddp)], **run)
    try:
        out1, err1 = one.communicate(timeout=timeout)
        out2, err2 = two.communicate(timeout=timeout)
    finally:
        for p in (one, two):
            if p.poll() is None:
                p.kill()
    assert one.returncode == 0, err1
    assert two.returncode == 0, err2
    return out1, out2
