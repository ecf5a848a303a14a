"""Deterministic synthetic video datasets in the UCF101 layout (``deepvideo data synth``).

Sets: ``motion-shapes`` (classes defined only by motion), ``kind-direction`` (object kind x
direction) and ``dynamic-scenes`` (dynamic textures, static and moving camera halves).
Every video is a pure function of ``(seed, set, class, index)`` and the render parameters,
so results do not depend on the number of workers. :func:`render_video` returns frames in
memory (with ground truth); :func:`generate_dataset` writes the dataset.
"""

from deepvideo.data.synth import dynamic_scenes, kind_direction, motion_shapes
from deepvideo.data.synth.common import Clip, RenderParams, SynthSet, video_rngs

SETS: dict[str, SynthSet] = {s.name: s for s in (motion_shapes.SET, kind_direction.SET, dynamic_scenes.SET)}


def get_set(name: str) -> SynthSet:
    """The synthetic set called ``name``; a clear error lists the known ones."""
    try:
        return SETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic set {name!r}; choose one of: {', '.join(SETS)}") from None


def render_video(name: str, class_index: int, video_index: int, seed: int = 0,
                 params: RenderParams | None = None) -> Clip:
    """Render video ``video_index`` of class ``class_index`` of set ``name`` in memory."""
    synth_set = get_set(name)
    if not 0 <= class_index < len(synth_set.classes):
        raise ValueError(f"class index {class_index} out of range for {name!r} "
                         f"({len(synth_set.classes)} classes)")
    if video_index < 0:
        raise ValueError(f"video index must be >= 0, got {video_index}")
    params = params or RenderParams()
    if synth_set.camera_subsets and (params.moving_camera or params.mixed_camera):
        raise ValueError(f"{name} always has both a static- and a moving-camera half (odd video indices "
                         f"are filmed by a moving camera); drop --moving-camera / --mixed-camera")
    scene_rng, camera_rng = video_rngs(seed, name, class_index, video_index)
    return synth_set.render(class_index, video_index, scene_rng, camera_rng, params.for_video(video_index))


from deepvideo.data.synth.writer import SynthSummary, generate_dataset  # noqa: E402

__all__ = ["SETS", "Clip", "RenderParams", "SynthSet", "SynthSummary", "generate_dataset", "get_set",
           "render_video"]
