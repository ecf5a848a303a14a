"""Clip sampling: which frames (and flow fields) of a video a model sees.

Pure functions returning ``int64`` numpy index arrays; randomness only through an explicit
``np.random.Generator``; in test mode (``train=False``) the output never depends on the rng.

Recipes reproduced (see PAPERS.md §2-4, §7):

* Two-stream (Simonyan & Zisserman 2014): test on 25 frames evenly spaced -> ``num_clips=25``.
* TSN (Wang et al. 2016): K equal segments, one snippet each, random offset inside the segment
  in training, the segment centre in testing.
* 3D fusion (Feichtenhofer et al. 2016): T = 5 chunks tau apart, random start, tau drawn from
  [1, 10]; ST-ResNet (2016): 5 chunks, tau in [5, 15]; T-ResNet: 16 frames, stride in [5, 15].
* Flow stacks: L consecutive fields per snippet; field t is the flow from frame t to t+1, so a
  video of n frames has n - 1 fields.

Short videos: when a clip needs more frames than the video has, ``short_policy`` maps the
overflowing positions: ``"loop"`` (index mod n: the video is played again from the start),
``"repeat_last"`` (clamped to the last frame) or ``"pad"`` (index -1: the reader yields a
padding frame). A video with one frame has no flow field: its flow indices are all -1 whatever
the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepvideo.spec import InputSpec

POLICIES = ("loop", "repeat_last", "pad")
LAYOUTS = ("auto", "segments", "chunks")
StrideLike = int | tuple[int, int]


def _stride_range(stride: StrideLike) -> tuple[int, int]:
    lo, hi = (stride, stride) if isinstance(stride, (int, np.integer)) else stride
    lo, hi = int(lo), int(hi)
    if not 1 <= lo <= hi:
        raise ValueError(f"stride must be >= 1 (or a range lo <= hi), got {stride}")
    return lo, hi


def _check(num_frames: int, policy: str) -> None:
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if policy not in POLICIES:
        raise ValueError(f"short_policy must be one of {POLICIES}, got {policy!r}")


def _rng(rng: np.random.Generator | None, train: bool) -> np.random.Generator | None:
    if train and rng is None:
        raise ValueError("training-mode sampling needs an explicit np.random.Generator")
    return rng if train else None


def fit_indices(indices, length: int, policy: str = "loop") -> np.ndarray:
    """Map ideal indices ``>= 0`` into ``[0, length)`` by ``policy`` (all -1 when ``length == 0``)."""
    idx = np.asarray(indices, dtype=np.int64)
    if length <= 0:
        return np.full(idx.shape, -1, dtype=np.int64)
    if policy == "loop":
        return idx % length
    if policy == "repeat_last":
        return np.minimum(idx, length - 1)
    if policy == "pad":
        return np.where(idx < length, idx, -1)
    raise ValueError(f"short_policy must be one of {POLICIES}, got {policy!r}")


def draw_stride(
    stride: StrideLike,
    rng: np.random.Generator | None = None,
    *,
    train: bool = True,
    num_frames: int | None = None,
    num_steps: int = 1,
    extent: int = 1,
) -> int:
    """Stride tau for ``num_steps`` steps (frame-rate jitter): uniform in ``[lo, hi]`` in training,
    the range's middle in testing.

    With ``num_frames`` given, tau is limited to strides whose clip (``num_steps * tau + extent``
    frames) fits the video, as long as ``lo`` fits; otherwise ``lo`` is used and the short-video
    policy applies.
    """
    lo, hi = _stride_range(stride)
    if num_frames is not None and num_steps > 0:
        fit = (num_frames - extent) // num_steps
        if fit >= lo:
            hi = min(hi, fit)
        else:
            hi = lo
    if not train:
        return (lo + hi) // 2
    return int(_rng(rng, train).integers(lo, hi + 1))


def segment_starts(
    num_positions: int,
    num_segments: int,
    rng: np.random.Generator | None = None,
    *,
    train: bool = True,
    num_views: int = 1,
) -> np.ndarray:
    """``[num_views, num_segments]`` start positions in ``[0, num_positions)`` (TSN segments).

    The positions are cut into ``num_segments`` equal segments; training draws one position per
    segment uniformly inside it; testing takes, for view v, the fraction ``(v + 0.5) / num_views``
    of every segment (one view: the centre). ``num_positions < 1`` is treated as 1 (start 0).
    """
    m = max(int(num_positions), 1)
    if train:
        offsets = _rng(rng, train).random((num_views, num_segments))
        starts = np.floor((np.arange(num_segments) + offsets) * (m / num_segments)).astype(np.int64)
    else:  # exact integer form of floor((k + (v + 0.5) / V) * m / K)
        k = np.arange(num_segments, dtype=np.int64)[None, :]
        v = np.arange(num_views, dtype=np.int64)[:, None]
        starts = ((2 * (k * num_views + v) + 1) * m) // (2 * num_segments * num_views)
    return np.minimum(starts, m - 1)


def uniform_indices(num_frames: int, n: int) -> np.ndarray:
    """``n`` frames evenly spaced over the video (centres of n equal parts), e.g. 25 test frames."""
    _check(num_frames, "loop")
    return segment_starts(num_frames, n, train=False)[0]


def clip_indices(start, clip_len: int, stride: int = 1) -> np.ndarray:
    """Ideal (unfitted) frame indices ``start + i * stride`` for ``i < clip_len``; start may be an array."""
    start = np.asarray(start, dtype=np.int64)
    return start[..., None] + np.arange(clip_len, dtype=np.int64) * int(stride)


def dense_clip_indices(
    num_frames: int,
    clip_len: int,
    stride: StrideLike = 1,
    rng: np.random.Generator | None = None,
    *,
    train: bool = True,
    num_clips: int = 1,
    short_policy: str = "loop",
) -> np.ndarray:
    """``[num_clips, clip_len]`` frames: clips of ``clip_len`` frames ``tau`` apart.

    tau is drawn from ``stride`` (int or range); training picks a random start, testing spreads
    ``num_clips`` clips evenly over the video.
    """
    return tsn_indices(
        num_frames, 1, clip_len, stride, rng, train=train, num_clips=num_clips, short_policy=short_policy
    )


def tsn_indices(
    num_frames: int,
    num_segments: int,
    snippet_len: int = 1,
    stride: StrideLike = 1,
    rng: np.random.Generator | None = None,
    *,
    train: bool = True,
    num_clips: int = 1,
    short_policy: str = "loop",
) -> np.ndarray:
    """``[num_clips, num_segments * snippet_len]``: one snippet per TSN segment, in temporal order."""
    _check(num_frames, short_policy)
    tau = draw_stride(stride, rng, train=train, num_frames=num_frames, num_steps=snippet_len - 1)
    span = (snippet_len - 1) * tau + 1
    starts = segment_starts(num_frames - span + 1, num_segments, rng, train=train, num_views=num_clips)
    frames = clip_indices(starts, snippet_len, tau).reshape(num_clips, -1)
    return fit_indices(frames, num_frames, short_policy)


def multi_view_indices(
    num_frames: int, num_clips: int, clip_len: int = 1, stride: int = 1, *, short_policy: str = "loop"
) -> np.ndarray:
    """Test views: ``[num_clips, clip_len]``, clips evenly spaced over the video (deterministic)."""
    return dense_clip_indices(
        num_frames, clip_len, stride, None, train=False, num_clips=num_clips, short_policy=short_policy
    )


def chunk_indices(
    num_frames: int,
    num_chunks: int = 5,
    stride: StrideLike = (1, 10),
    rng: np.random.Generator | None = None,
    *,
    train: bool = True,
    num_clips: int = 1,
    extent: int = 1,
    short_policy: str = "loop",
) -> np.ndarray:
    """``[num_clips, num_chunks]`` chunk start frames, ``tau`` apart (3D-fusion / ST-ResNet recipe).

    Each chunk covers ``extent`` frames from its start (``flow_stack + 1`` for a flow stack), so
    the last chunk still fits the video when possible. Returns ideal starts fitted to the frames.
    """
    _check(num_frames, short_policy)
    starts = _chunk_starts(num_frames, num_chunks, stride, rng, train, num_clips, extent)
    return fit_indices(starts, num_frames, short_policy)


def _chunk_starts(num_frames, num_chunks, stride, rng, train, num_clips, extent) -> np.ndarray:
    tau = draw_stride(
        stride, rng, train=train, num_frames=num_frames, num_steps=num_chunks - 1, extent=extent
    )
    span = (num_chunks - 1) * tau + extent
    first = segment_starts(num_frames - span + 1, 1, rng, train=train, num_views=num_clips)
    return clip_indices(first[:, 0], num_chunks, tau)


def flow_stack_indices(num_frames: int, starts, flow_stack: int, short_policy: str = "loop") -> np.ndarray:
    """``[..., flow_stack]`` flow-field indices ``start .. start + L - 1`` (field t: frame t -> t+1).

    ``starts`` are ideal snippet starts; fields are fitted to the ``num_frames - 1`` fields
    by ``short_policy`` (all -1 for a one-frame video).
    """
    _check(num_frames, short_policy)
    fields = clip_indices(starts, flow_stack, 1)
    return fit_indices(fields, num_frames - 1, short_policy)


@dataclass(frozen=True)
class Sampler:
    """``sampler(num_frames, rng) -> {"rgb": [V, K*T], "flow": [V, K*L]}`` built from an InputSpec.

    Layout ``"segments"``: K snippets (TSN segments; K = 1 is one dense clip), each of T frames at
    stride tau; ``"chunks"``: K one-frame snippets tau apart (3D fusion, ST-ResNet). ``"auto"``
    uses chunks when ``num_frames == 1``, ``num_segments > 1`` and the stride is not 1 (a stride
    inside a one-frame snippet would mean nothing), segments otherwise.

    Alignment: snippet k's flow stack starts at its first RGB frame s_k (fields s_k .. s_k+L-1,
    i.e. frames s_k .. s_k+L), so ``flow[:, k*L] == rgb[:, k*T]`` whenever the video is long
    enough; positions are chosen so that both the RGB frames and the flow stack fit.
    """

    spec: InputSpec
    train: bool
    num_clips: int = 1
    short_policy: str = "loop"
    layout: str = "segments"

    @property
    def rgb_needed(self) -> bool:  # audio windows follow the RGB frames' time span
        return "rgb" in self.spec.batch_keys or "audio" in self.spec.batch_keys

    @property
    def flow_needed(self) -> bool:
        return "flow" in self.spec.batch_keys

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        spec, policy, views = self.spec, self.short_policy, self.num_clips
        _check(num_frames, policy)
        rng = _rng(rng, self.train)
        flow_extent = spec.flow_stack + 1 if self.flow_needed else 1
        if self.layout == "chunks":
            starts = _chunk_starts(
                num_frames, spec.num_segments, spec.frame_stride, rng, self.train, views, flow_extent
            )  # [V, K]
            rgb = starts[..., None]
        else:
            steps = spec.num_frames - 1
            tau = draw_stride(
                spec.frame_stride, rng, train=self.train, num_frames=num_frames, num_steps=steps
            )
            span = max(steps * tau + 1, flow_extent)
            starts = segment_starts(
                num_frames - span + 1, spec.num_segments, rng, train=self.train, num_views=views
            )  # [V, K]
            rgb = clip_indices(starts, spec.num_frames, tau)  # [V, K, T]
        out = {}
        if self.rgb_needed:
            out["rgb"] = fit_indices(rgb.reshape(views, -1), num_frames, policy)
        if self.flow_needed:
            out["flow"] = flow_stack_indices(num_frames, starts, spec.flow_stack, policy).reshape(views, -1)
        return out


def build_sampler(
    spec: InputSpec,
    train: bool,
    num_clips: int = 1,
    short_policy: str = "loop",
    layout: str = "auto",
) -> Sampler:
    """The sampler for a model's ``InputSpec`` (see :class:`Sampler`); ``num_clips`` views in testing."""
    if short_policy not in POLICIES:
        raise ValueError(f"short_policy must be one of {POLICIES}, got {short_policy!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if layout == "auto":
        chunky = spec.num_frames == 1 and spec.num_segments > 1 and spec.stride_range != (1, 1)
        layout = "chunks" if chunky else "segments"
    if layout == "chunks" and spec.num_frames != 1:
        raise ValueError(
            f"the chunks layout takes one frame per chunk, the spec has num_frames={spec.num_frames}"
        )
    return Sampler(spec=spec, train=train, num_clips=num_clips, short_policy=short_policy, layout=layout)
