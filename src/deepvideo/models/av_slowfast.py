"""Audiovisual SlowFast: Xiao, Lee, Grauman, Malik & Feichtenhofer, "Audiovisual SlowFast
Networks for Video Recognition", arXiv 2001.08740 (2020).

SlowFast (:mod:`deepvideo.models.slowfast`) plus an *Audio* pathway on the clip's log-mel
spectrogram (``audio [N, 1, Ta, F]``: 16 kHz, 80 mel bins, 128 steps, see
:mod:`deepvideo.data.audio`), a 2D bottleneck ResNet over time x frequency. Lateral *A→FS*
connections carry audio features into both visual pathways: the audio stage's output is averaged
over frequency, pooled in time to the visual pathway's frames, projected by a 1x1x1 conv + BN +
ReLU to the pathway's channels and added at every position (the paper fuses late, where the audio
features are deep enough; here the outputs of audio res3 and res4 go into the inputs of visual
res4 and res5 by default, ``fuse_stages=(2, 3)``). *DropPathway*:
in training the whole Audio pathway (its laterals and its part of the head) is dropped for an
iteration with probability ``drop_pathway`` (the paper's P_d = 0.8 on Kinetics), which keeps the
faster-learning and overfitting audio from dominating the visual pathways. The head concatenates
the pooled Slow, Fast and Audio features.

Our reading where the paper gives no number here: the Audio pathway is a ResNet-50 layout at 1/4
of the Slow pathway's width (``audio_width``), on one-channel spectrograms.
:func:`audio_resnet` is the Audio pathway alone with a classifier (the audio-only peer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.models.slowfast import SlowFast
from deepvideo.nn.backbones2d import ResNet2d, resnet
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

PAPER = "Xiao et al., Audiovisual SlowFast Networks for Video Recognition, arXiv 2001.08740, 2020"
DROP_PATHWAY = 0.8  # P_d (Xiao et al. 2020, Kinetics)


def _audio_input(batch: dict) -> torch.Tensor:
    if "audio" not in batch:
        raise KeyError(f"this audio model needs batch['audio'] [N, 1, Ta, F]; the batch has {sorted(batch)}")
    a = batch["audio"]
    if a.dim() != 4 or a.shape[1] != 1:
        raise ValueError(f"audio must be [N, 1, Ta, F] log-mel spectrograms, got {tuple(a.shape)}")
    return a


class AudioToVisual(nn.Module):
    """A→V lateral: frequency-averaged audio features pooled to ``T`` steps, 1x1x1 conv, BN, ReLU."""

    def __init__(self, audio_channels: int, visual_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(audio_channels, visual_channels, 1, bias=False)
        self.norm = nn.BatchNorm3d(visual_channels)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        a = F.adaptive_avg_pool1d(audio.mean(dim=3), visual.shape[2])  # [N, Ca, T]
        return visual + F.relu(self.norm(self.conv(a[..., None, None])))


def _audio_net(width: float) -> ResNet2d:
    net = resnet(50, num_classes=1, in_channels=1, width=width)
    net.fc = nn.Identity()  # the pathway's features only; the classifier is the model's own
    return net


class AudioNet(nn.Module):
    """The Audio pathway alone with a linear classifier (audio-only recognition)."""

    def __init__(self, num_classes: int, width: float = 0.25, dropout: float = 0.5):
        super().__init__()
        self.audio = _audio_net(width)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.audio.num_features, num_classes)

    def forward(self, batch: dict) -> torch.Tensor:
        feats = self.audio.features(_audio_input(batch))
        return self.fc(self.dropout(feats.mean(dim=(2, 3))))


class AVSlowFast(SlowFast):
    """SlowFast + Audio pathway with A→FS laterals and DropPathway (see the module docstring)."""

    def __init__(self, num_classes: int = 400, *, audio_width: float = 0.25,
                 fuse_stages: tuple[int, ...] = (2, 3), drop_pathway: float = DROP_PATHWAY, **kw):
        super().__init__(num_classes, **kw)
        if not 0.0 <= drop_pathway < 1.0:
            raise ValueError(f"drop_pathway must be in [0, 1), got {drop_pathway}")
        if not set(fuse_stages) <= {1, 2, 3}:
            raise ValueError("fuse_stages name the stages (1..3 = res2..res4) after which audio is added, "
                             f"got {fuse_stages}")
        self.audio = _audio_net(audio_width)
        self.drop_pathway, self.fuse_stages = drop_pathway, tuple(fuse_stages)
        a_ch = [m.conv3.out_channels if hasattr(m, "conv3") else m.conv2.out_channels
                for m in (stage[-1] for stage in self.audio.stages)]
        for s in self.fuse_stages:  # audio stage s into the input of visual stage s + 1
            slow_c = getattr(self, f"slow_layer{s + 1}")[0].conv_a.in_channels
            fast_c = getattr(self, f"fast_layer{s + 1}")[0].conv_a.in_channels
            self.add_module(f"a2s{s}", AudioToVisual(a_ch[s - 1], slow_c))
            self.add_module(f"a2f{s}", AudioToVisual(a_ch[s - 1], fast_c))
        self.audio_features = a_ch[-1]
        self.fc = nn.Linear(self.fc.in_features + a_ch[-1], num_classes)

    def audio_stages(self, spec: torch.Tensor) -> list[torch.Tensor]:
        x, outs = self.audio.stem(spec), []
        for stage in self.audio.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, batch: dict) -> torch.Tensor:
        slow, fast = self.pathways(rgb_input(batch))
        spec = _audio_input(batch)
        if self.training and self.drop_pathway > 0 and bool(torch.rand(()) < self.drop_pathway):
            # DropPathway: zero tensors instead of the audio laterals, zero audio features in the head
            no_audio = slow.new_zeros(len(slow), self.audio_features)
            return self.forward_pathways(slow, fast, extra_features=no_audio)
        audio = self.audio_stages(spec)

        def add_audio(s: int, slow: torch.Tensor, fast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if s not in self.fuse_stages:
                return slow, fast
            return getattr(self, f"a2s{s}")(slow, audio[s - 1]), getattr(self, f"a2f{s}")(fast, audio[s - 1])

        return self.forward_pathways(slow, fast, add_audio, audio[-1].mean(dim=(2, 3)))


def av_slowfast_r50(num_classes: int = 400, **kw) -> AVSlowFast:
    """AVSlowFast R50 4×16: SlowFast R50 4×16 (α = 8) + Audio pathway."""
    return AVSlowFast(num_classes, **{"alpha": 8, "fusion_kernel": 5, **kw})


def audio_resnet(num_classes: int = 400, width: float = 0.25, dropout: float = 0.5) -> AudioNet:
    """The AVSlowFast Audio pathway alone with a classifier."""
    return AudioNet(num_classes, width, dropout)


_AV = InputSpec(("rgb", "audio"), num_frames=32, frame_stride=2, crop_size=224)
_AUDIO = InputSpec(("audio",), num_frames=32, frame_stride=2, crop_size=224)
register_model("av_slowfast_r50_4x16", av_slowfast_r50, _AV, paper=PAPER,
               summary="Audiovisual SlowFast R50 4x16: + Audio pathway (log-mel 128x80), A->FS laterals, "
                       "DropPathway 0.8")
register_model("audio_resnet", audio_resnet, _AUDIO, paper=PAPER,
               summary="AVSlowFast's Audio pathway alone (ResNet-50 layout at 1/4 width on log-mel 128x80)")
_SMALL = {"num_frames": 16, "crop_size": 64, "audio_frames": 64, "audio_mels": 40}
register_model("av_slowfast_small", av_slowfast_r50, _AV.replace(**_SMALL),
               paper=PAPER, summary="CPU AVSlowFast: width 16 (Slow), alpha 8, log-mel 64x40",
               width=16, audio_width=0.0625)
register_model("audio_resnet_small", audio_resnet, _AUDIO.replace(**_SMALL),
               paper=PAPER, summary="CPU audio pathway: ResNet-50 layout at 1/16 width on log-mel 64x40",
               width=0.0625)
