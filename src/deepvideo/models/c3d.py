"""C3D: Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015.

Eight 3×3×3 convolutions (64, 128, 256×2, 512×2, 512×2), five max pools (the first 1×2×2 so
early temporal information survives, the others 2×2×2), fc6 and fc7 of 4096 units and a
classifier, on 16×112×112 clips. UCF101: 82.3 (one net, fc6 features + linear SVM).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.conv import NormBuilder, conv3d, resolve_norm
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

C3D_MEAN = (0.4235, 0.3961, 0.3647)  # the Sports-1M clip mean of the original model, /255
C3D_STD = (0.2255, 0.2196, 0.2157)


class C3D(nn.Module):
    """The C3D network; ``norm="none"`` is the original, "bn"/"gn" add a norm after each conv."""

    def __init__(
        self,
        num_classes: int = 101,
        *,
        num_frames: int = 16,
        crop_size: int = 112,
        norm: NormBuilder | str = "none",
        dropout: float = 0.5,
        fc_width: int = 4096,
        width: int = 64,
    ) -> None:
        super().__init__()
        norm_b = resolve_norm(norm)
        widths = [width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width, 8 * width]
        pools_after = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2), 5: (2, 2, 2), 7: (2, 2, 2)}
        layers: list[nn.Module] = []
        in_ch = 3
        for i, w in enumerate(widths):
            layers += [conv3d(in_ch, w, 3, bias=True), norm_b(w), nn.ReLU(inplace=True)]
            if i in pools_after:
                # pool5 pads H and W by 1 so 7×7 maps (112 input) give 4×4, as in the original
                pad = (0, 1, 1) if i == 7 else 0
                layers.append(nn.MaxPool3d(pools_after[i], pools_after[i], padding=pad))
            in_ch = w
        self.features = nn.Sequential(*layers)
        t = max(num_frames // 16, 1)
        s = crop_size // 32 + 1
        self.fc6 = nn.Linear(widths[-1] * t * s * s, fc_width)
        self.fc7 = nn.Linear(fc_width, fc_width)
        self.dropout = nn.Dropout(dropout)
        self.fc8 = nn.Linear(fc_width, num_classes)
        self.act = nn.ReLU(inplace=True)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        x = self.features(rgb_input(batch)).flatten(1)
        if x.shape[1] != self.fc6.in_features:
            raise ValueError(
                f"C3D was built for {self.fc6.in_features} fc6 inputs, got {x.shape[1]}: "
                "pass num_frames/crop_size matching the clip"
            )
        x = self.dropout(self.act(self.fc6(x)))
        x = self.dropout(self.act(self.fc7(x)))
        return self.fc8(x)


def c3d(num_classes: int = 101, **kw) -> C3D:
    return C3D(num_classes, **kw)


register_model(
    "c3d",
    c3d,
    InputSpec(("rgb",), num_frames=16, frame_stride=1, crop_size=112, mean=C3D_MEAN, std=C3D_STD),
    paper="Tran et al., Learning Spatiotemporal Features with 3D Convolutional Networks, ICCV 2015",
    summary="C3D: 8 conv 3x3x3, 5 pools, fc6/fc7 4096; 16x112x112",
)
register_model(
    "c3d_bn",
    c3d,
    InputSpec(("rgb",), num_frames=16, frame_stride=1, crop_size=112, mean=C3D_MEAN, std=C3D_STD),
    paper="Tran et al., ICCV 2015",
    summary="C3D with batch norm after every conv",
    norm="bn",
)
