"""Clip transforms: the same random crop / flip / jitter for every frame and every modality.

A transform takes one sample ``{"rgb": uint8 [T,H,W,3], "flow": float32 [T,2,H,W]}`` (either key
optional; other keys pass through) and an ``np.random.Generator``, and returns float tensors
``{"rgb": [3,T,h,w], "flow": [2,T,h,w]}``; test transforms with several spatial views (three or
ten crops, flips) put a leading view dimension first: ``[V,3,T,h,w]`` (``Compose.num_views``).
Every operation works on the whole clip at once (``[..., T, C, H, W]`` tensors,
``torch.nn.functional.interpolate`` with antialiasing); rgb stays uint8 (rounded after each
resize, like torchvision's tensor transforms) until the final normalisation, which writes float
``[..., C, T, h, w]`` in one pass.

Geometry is drawn once per sample in the pixel frame of the first modality (rgb if present)
and mapped proportionally onto the others, so RGB and flow of one sample always show the same
region, even when stored at different resolutions.

Recipes (PAPERS.md §2-4):

* ``"two_stream"`` (Simonyan & Zisserman 2014; TSN): frames at short side 256, a crop of height
  and width each in {256, 224, 192, 168} (scaled with the short side; aspect distortion at most
  one step, TSN's ``max_distort=1``) taken at a corner or the centre, resized to 224, random flip.
* ``"fusion"`` (Feichtenhofer et al. 2016; ST-ResNet RGB): crop width and height jittered by
  +-25% around 224/256 of the short side, each crop border at most 25% of the frame away from
  the frame border, resized to 224, random flip.
* ``"standard"``: short side resize and a random square crop, random flip.
* Testing: short side resize, then the centre crop, three crops along the longer side, or ten
  crops (4 corners + centre, and their flips); ``flip=True`` adds mirrored views (25 frames +
  flips of ST-ResNet).

Flow conventions. A horizontal flip mirrors the image and negates u (motion to the right becomes
motion to the left). Resizing flow by factors (sx, sy) scales u by sx and v by sy so the vectors
stay in pixels of the output image (``scale_flow=False`` keeps the stored values, for models
trained that way). Normalisation: rgb ``(x / 255 - mean) / std`` with the spec's 3-entry
mean/std; flow ``flow / flow_scale`` with ``flow_scale = deepvideo.spec.FLOW_SCALE`` (1: pixels,
the units every flow-only preset states too, so a temporal stream trained alone and the rgb+flow
model built on it see the same values). A flow-only spec whose mean/std have 2 entries states
its own flow statistics in pixels (e.g. ``std=(20, 20)`` for I3D flow, whose published weights
take flow / 20 px): then flow is ``(flow - mean) / std``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.spec import FLOW_SCALE, InputSpec

MODALITIES = ("rgb", "flow")
TWO_STREAM_SIZES = (256, 224, 192, 168)  # crop sides at short side 256 (scaled with the frame)
Box = tuple[int, int, int, int]  # y0, x0, h, w in reference pixels


def _present(sample: dict) -> list[str]:
    return [k for k in MODALITIES if k in sample]


def _ref_size(sample: dict) -> tuple[int, int]:
    keys = _present(sample)
    if not keys:
        raise ValueError("sample has neither 'rgb' nor 'flow'")
    h, w = sample[keys[0]].shape[-2:]
    return int(h), int(w)


def _need_rng(rng: np.random.Generator | None, what: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{what} is random: pass an np.random.Generator")
    return rng


def resize(
    x: torch.Tensor, size: tuple[int, int], *, flow: bool = False, scale_flow: bool = True
) -> torch.Tensor:
    """Bilinear antialiased resize of ``[..., C, H, W]`` (uint8 or float) to ``size``.

    For flow, u and v are multiplied by the x and y scale factors unless ``scale_flow=False``.
    """
    h0, w0 = x.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h0, w0) == (h, w):
        return x
    lead = x.shape[:-3]
    y = F.interpolate(
        x.reshape(-1, *x.shape[-3:]), size=(h, w), mode="bilinear", align_corners=False, antialias=True
    )
    y = y.reshape(*lead, *y.shape[-3:])
    if flow and scale_flow:
        scale = torch.tensor([w / w0, h / h0], dtype=y.dtype).view(2, 1, 1)
        y = y * scale
    return y


def hflip(x: torch.Tensor, *, flow: bool = False) -> torch.Tensor:
    """Mirror ``[..., C, H, W]`` left-right; for flow also negate u (channel 0)."""
    y = x.flip(-1)
    if flow:
        y[..., 0, :, :].neg_()
    return y


def _map_box(box: Box, ref: tuple[int, int], size: tuple[int, int]) -> Box:
    if ref == size:
        return box
    sy, sx = size[0] / ref[0], size[1] / ref[1]
    y0, x0, h, w = box
    y1, x1 = round(y0 * sy), round(x0 * sx)
    return y1, x1, max(1, min(round(h * sy), size[0] - y1)), max(1, min(round(w * sx), size[1] - x1))


def crop_sample(sample: dict, box: Box) -> dict:
    """Crop every modality to ``box`` (given in the first modality's pixels)."""
    ref = _ref_size(sample)
    out = dict(sample)
    for k in _present(sample):
        x = sample[k]
        y0, x0, h, w = _map_box(box, ref, tuple(x.shape[-2:]))
        out[k] = x[..., y0 : y0 + h, x0 : x0 + w]
    return out


def _resize_sample(sample: dict, size: tuple[int, int], scale_flow: bool) -> dict:
    """Resize every modality to ``size``, so they end up pixel-aligned even if stored at other sizes."""
    out = dict(sample)
    for k in _present(sample):
        out[k] = resize(sample[k], size, flow=k == "flow", scale_flow=scale_flow)
    return out


def _ensure_min_side(sample: dict, side: int, scale_flow: bool) -> dict:
    """Upscale (keeping aspect) when the short side is below ``side``, so a crop of ``side`` fits."""
    h, w = _ref_size(sample)
    if min(h, w) >= side:
        return sample
    f = side / min(h, w)
    return _resize_sample(sample, (max(side, round(h * f)), max(side, round(w * f))), scale_flow)


class ToClipTensors:
    """rgb ``[T,H,W,3]`` -> ``[T,3,H,W]``; flow -> float32 ``[T,2,H,W]``.

    uint8 rgb stays uint8 (a view, channels-last in memory: the fast path of torch's antialiased
    uint8 resize, and 4x less memory traffic) until :class:`Normalize` makes it float; float rgb
    (0..255) is accepted too and stays float.
    """

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        out = dict(sample)
        if "rgb" in sample:
            rgb = torch.as_tensor(sample["rgb"])
            if rgb.ndim != 4 or rgb.shape[-1] != 3:
                raise ValueError(f"rgb must be [T,H,W,3], got {tuple(rgb.shape)}")
            rgb = rgb.permute(0, 3, 1, 2)
            out["rgb"] = rgb if rgb.dtype in (torch.uint8, torch.float32) else rgb.to(torch.float32)
        if "flow" in sample:
            flow = torch.as_tensor(sample["flow"])
            if flow.ndim != 4 or flow.shape[1] != 2:
                raise ValueError(f"flow must be [T,2,H,W], got {tuple(flow.shape)}")
            out["flow"] = flow.to(torch.float32)
        return out


class ResizeShortSide:
    """Resize so the short side of the first modality is ``size`` (aspect kept)."""

    def __init__(self, size: int, scale_flow: bool = True):
        self.size, self.scale_flow = int(size), scale_flow

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        h, w = _ref_size(sample)
        f = self.size / min(h, w)
        return _resize_sample(sample, (max(1, round(h * f)), max(1, round(w * f))), self.scale_flow)


class MultiScaleCrop:
    """TSN/two-stream multi-scale corner cropping, resized to ``output_size``.

    Crop sides are ``sizes`` scaled by ``short side / base`` (so {256,224,192,168} at short side
    256); height and width are drawn independently among them with index difference at most
    ``max_distort``; the crop sits at one of the 4 corners or the centre (``fix_crop``), or
    anywhere (``fix_crop=False``).
    """

    def __init__(
        self,
        output_size: int,
        sizes: Sequence[int] = TWO_STREAM_SIZES,
        base: int = 256,
        max_distort: int = 1,
        fix_crop: bool = True,
        scale_flow: bool = True,
    ):
        self.output_size, self.sizes, self.base = int(output_size), tuple(sizes), base
        self.max_distort, self.fix_crop, self.scale_flow = max_distort, fix_crop, scale_flow

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> Box:
        short = min(height, width)
        sides = [max(1, min(int(s * short / self.base), short)) for s in self.sizes]
        pairs = [
            (h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= self.max_distort
        ]
        h, w = pairs[int(rng.integers(len(pairs)))]
        if self.fix_crop:
            dy, dx = height - h, width - w
            offsets = [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]
            y0, x0 = offsets[int(rng.integers(len(offsets)))]
        else:
            y0, x0 = int(rng.integers(height - h + 1)), int(rng.integers(width - w + 1))
        return y0, x0, h, w

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        box = self.sample_params(*_ref_size(sample), _need_rng(rng, "MultiScaleCrop"))
        return _resize_sample(crop_sample(sample, box), (self.output_size,) * 2, self.scale_flow)


class JitterCrop:
    """Fusion-network crop: width and height each jittered by +-``jitter`` around ``ratio`` x short
    side, both gaps to the frame border at most ``border`` x frame size, resized to ``output_size``.

    When the crop is too small for both gaps to stay within ``border`` it is centred on that axis.
    """

    def __init__(
        self,
        output_size: int,
        ratio: float = 224 / 256,
        jitter: float = 0.25,
        border: float = 0.25,
        scale_flow: bool = True,
    ):
        self.output_size, self.ratio, self.jitter, self.border = int(output_size), ratio, jitter, border
        self.scale_flow = scale_flow

    def _axis(self, length: int, base: float, rng: np.random.Generator) -> tuple[int, int]:
        size = int(round(base * (1 + rng.uniform(-self.jitter, self.jitter))))
        size = max(1, min(size, length))
        gap = self.border * length
        lo, hi = max(0, int(np.ceil(length - size - gap))), min(int(np.floor(gap)), length - size)
        if lo > hi:
            lo = hi = (length - size) // 2
        return int(rng.integers(lo, hi + 1)), size

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> Box:
        base = self.ratio * min(height, width)
        x0, w = self._axis(width, base, rng)
        y0, h = self._axis(height, base, rng)
        return y0, x0, h, w

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        box = self.sample_params(*_ref_size(sample), _need_rng(rng, "JitterCrop"))
        return _resize_sample(crop_sample(sample, box), (self.output_size,) * 2, self.scale_flow)


class RandomCrop:
    """A ``size`` x ``size`` crop at a uniformly random position."""

    def __init__(self, size: int, scale_flow: bool = True):
        self.size, self.scale_flow = int(size), scale_flow

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        rng = _need_rng(rng, "RandomCrop")
        sample = _ensure_min_side(sample, self.size, self.scale_flow)
        h, w = _ref_size(sample)
        y0, x0 = int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1))
        return crop_sample(sample, (y0, x0, self.size, self.size))


class CenterCrop:
    """The centred ``size`` x ``size`` crop."""

    def __init__(self, size: int, scale_flow: bool = True):
        self.size, self.scale_flow = int(size), scale_flow

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        sample = _ensure_min_side(sample, self.size, self.scale_flow)
        h, w = _ref_size(sample)
        return crop_sample(sample, ((h - self.size) // 2, (w - self.size) // 2, self.size, self.size))


def fixed_crops(sample: dict, boxes: Sequence[Box]) -> dict:
    """Crops ``boxes`` of every modality stacked on a new leading view dimension."""
    crops = [crop_sample(sample, box) for box in boxes]
    out = dict(sample)
    for k in _present(sample):
        out[k] = torch.stack([c[k] for c in crops])
    return out


class _FixedCrops:
    """Base of the multi-crop test transforms: ``boxes(height, width)`` stacked as views."""

    def __init__(self, size: int, scale_flow: bool = True):
        self.size, self.scale_flow = int(size), scale_flow

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        sample = _ensure_min_side(sample, self.size, self.scale_flow)
        return fixed_crops(sample, self.boxes(*_ref_size(sample)))


class ThreeCrop(_FixedCrops):
    """Three ``size`` squares along the longer side: start, centre, end (centred on the short side)."""

    num_views = 3

    def boxes(self, height: int, width: int) -> list[Box]:
        s = self.size
        if width >= height:
            y0 = (height - s) // 2
            return [(y0, x0, s, s) for x0 in (0, (width - s) // 2, width - s)]
        x0 = (width - s) // 2
        return [(y0, x0, s, s) for y0 in (0, (height - s) // 2, height - s)]


class FiveCrop(_FixedCrops):
    """The 4 corner crops and the centre crop (top-left, top-right, bottom-left, bottom-right, centre)."""

    num_views = 5

    def boxes(self, height: int, width: int) -> list[Box]:
        s, dy, dx = self.size, height - self.size, width - self.size
        return [(0, 0, s, s), (0, dx, s, s), (dy, 0, s, s), (dy, dx, s, s), (dy // 2, dx // 2, s, s)]


class FlipViews:
    """Test-time flips: the views followed by their mirror images (adds a view dim if missing)."""

    def __init__(self, has_view_dim: bool):
        self.has_view_dim = has_view_dim

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        out = dict(sample)
        for k in _present(sample):
            x = sample[k] if self.has_view_dim else sample[k].unsqueeze(0)
            out[k] = torch.cat([x, hflip(x, flow=k == "flow")])
        return out


class TenCrop:
    """Ten crops: 4 corners + centre, then the same five mirrored (flow u negated)."""

    num_views = 10

    def __init__(self, size: int, scale_flow: bool = True):
        self.five = FiveCrop(size, scale_flow)

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        sample = _ensure_min_side(sample, self.five.size, self.five.scale_flow)
        ref = _ref_size(sample)
        out = dict(sample)
        for k in _present(sample):
            x = sample[k]
            crops = [crop_sample({k: x}, box)[k] for box in self.five.boxes(*ref)]
            views = torch.empty((10, *crops[0].shape), dtype=x.dtype)
            for v, c in enumerate(crops):  # written once into the output, flips derived in place
                views[v].copy_(c)
            views[5:] = views[:5].flip(-1)
            if k == "flow":
                views[5:, ..., 0, :, :].neg_()
            out[k] = views
        return out


class RandomHorizontalFlip:
    """Mirror the whole sample (all frames, all modalities; flow u negated) with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        if _need_rng(rng, "RandomHorizontalFlip").random() >= self.p:
            return sample
        out = dict(sample)
        for k in _present(sample):
            out[k] = hflip(sample[k], flow=k == "flow")
        return out


class ColorJitter:
    """Brightness, contrast and saturation factors drawn once per clip from ``[1-a, 1+a]`` (rgb only).

    Off in the papers' recipes (the fusion recipe explicitly uses no colour jitter).
    """

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        if "rgb" not in sample:
            return sample
        rng = _need_rng(rng, "ColorJitter")
        b, c, s = (
            float(rng.uniform(1 - a, 1 + a)) for a in (self.brightness, self.contrast, self.saturation)
        )
        x = sample["rgb"].to(torch.float32) * b
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1)
        gray = (x * weights).sum(-3, keepdim=True)
        mean = gray.mean(dim=(-2, -1), keepdim=True)
        x = (x - mean) * c + mean
        gray = (x * weights).sum(-3, keepdim=True)
        x = (x - gray) * s + gray
        return {**sample, "rgb": x.clamp_(0, 255)}


class Normalize:
    """rgb ``(x / 255 - mean) / std``; flow ``flow / flow_scale``.

    ``mean``/``std`` with 3 entries are rgb statistics on the [0, 1] scale. With 2 entries they are
    flow statistics in pixels (how flow-only model specs state them, e.g. ``std=(20, 20)``): flow
    becomes ``(flow - mean) / std`` and ``flow_scale`` is not used. :class:`Compose` applies a
    final Normalize with :meth:`to_cthw`, which writes the result straight into the
    ``[..., C, T, h, w]`` output layout.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], flow_scale: float = FLOW_SCALE):
        if len(mean) != len(std) or len(mean) not in (2, 3):
            raise ValueError(f"mean/std need 3 (rgb) or 2 (flow) entries, got {tuple(mean)} / {tuple(std)}")
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        if len(mean) == 3:
            self.mean, self.std = mean_t * 255, std_t * 255
            self.flow_mean, self.flow_std = torch.zeros(2, 1, 1), torch.full((2, 1, 1), float(flow_scale))
        else:
            self.mean = self.std = None
            self.flow_mean, self.flow_std = mean_t, std_t
        self.flow_scale = float(flow_scale)

    def _stats(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key == "rgb":
            if self.mean is None:
                raise ValueError(
                    "the spec's mean/std have 2 entries (flow statistics) but the sample has rgb"
                )
            return self.mean, self.std
        return self.flow_mean, self.flow_std

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        out = dict(sample)
        for k in _present(sample):
            mean, std = self._stats(k)
            out[k] = (sample[k].to(torch.float32) - mean) / std
        return out

    def to_cthw(self, sample: dict) -> dict:
        """Normalize and move channels before time: ``[..., T, C, h, w]`` -> float ``[..., C, T, h, w]``."""
        out = dict(sample)
        for k in _present(sample):
            x = sample[k].movedim(-3, -4)
            y = torch.empty(x.shape, dtype=torch.float32)
            mean, std = self._stats(k)
            torch.sub(x, mean.unsqueeze(-3), out=y)  # converts, transposes and centres in one pass
            out[k] = y.div_(std.unsqueeze(-3))
        return out


class Compose:
    """Convert the sample to clip tensors, run ``transforms`` with one rng, return ``[...,C,T,h,w]``."""

    def __init__(self, transforms: Sequence, num_views: int = 1):
        self.transforms = list(transforms)
        self.num_views = num_views
        self._to_tensors = ToClipTensors()

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        x = self._to_tensors(sample)
        steps = self.transforms
        final = steps[-1] if steps and isinstance(steps[-1], Normalize) else None
        for t in steps[:-1] if final is not None else steps:
            x = t(x, rng)
        if final is not None:
            return final.to_cthw(x)
        for k in _present(x):
            x[k] = x[k].to(torch.float32).movedim(-3, -4).contiguous()
        return x

    def __repr__(self) -> str:
        inner = ", ".join(type(t).__name__ for t in self.transforms)
        return f"Compose([{inner}], num_views={self.num_views})"


RECIPES = ("standard", "two_stream", "fusion")


def build_transforms(
    spec: InputSpec,
    train: bool,
    recipe: str = "standard",
    short_side: int | None = None,
    test_crops: int = 1,
    flip: bool | None = None,
    *,
    color_jitter: bool = False,
    flow_scale: float = FLOW_SCALE,
    scale_flow: bool = True,
) -> Compose:
    """The transform pipeline for a model's ``InputSpec``.

    ``short_side`` defaults to ``crop_size * 256 / 224`` (256 for 224 crops), or ``crop_size`` for
    three-crop testing (the crops then cover the whole frame). ``flip`` defaults to a random flip
    in training and no extra flipped views in testing; ten crops always include flips.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    if test_crops not in (1, 3, 10):
        raise ValueError(f"test_crops must be 1, 3 or 10, got {test_crops}")
    crop = spec.crop_size
    if short_side is None:
        short_side = crop if (not train and test_crops == 3) else round(crop * 256 / 224)
    steps: list = [ResizeShortSide(short_side, scale_flow)]
    views = 1
    if train:
        if recipe == "two_stream":
            steps.append(MultiScaleCrop(crop, base=round(crop * 256 / 224), scale_flow=scale_flow))
        elif recipe == "fusion":
            steps.append(JitterCrop(crop, ratio=crop / round(crop * 256 / 224), scale_flow=scale_flow))
        else:
            steps.append(RandomCrop(crop, scale_flow))
        if flip is None or flip:
            steps.append(RandomHorizontalFlip())
        if color_jitter:
            steps.append(ColorJitter())
    else:
        if test_crops == 1:
            steps.append(CenterCrop(crop, scale_flow))
        elif test_crops == 3:
            steps.append(ThreeCrop(crop, scale_flow))
        else:
            steps.append(TenCrop(crop, scale_flow))
        views = test_crops
        if flip and test_crops != 10:
            steps.append(FlipViews(has_view_dim=test_crops > 1))
            views *= 2
    steps.append(Normalize(spec.mean, spec.std, flow_scale))
    return Compose(steps, num_views=views)
