"""A synthetic AVA-format action detection set: textured actors, atomic actions told apart
by motion only, so detection trains and is measured without downloads.

Each video shows 2-3 actors on a static textured background. An actor is a textured body
(a random shape) with a small "hand" sprite above it. Its actions (multi-label) are one of
``stand`` (no label), ``walk`` (moves sideways, turning at the edges), ``jump`` (bounces up
and down) or ``spin`` (the body turns), plus ``wave`` (the hand swings from side to side;
always for a standing actor, else with probability 1/2). Shape, texture, size and colours are
drawn independently of the actions: only motion tells them apart.

Layout written under ``OUT``::

    videos/<video_id>.mp4
    annotations/ava_{train,val}_synth.csv                  # AVA rows, person id = actor index
    annotations/ava_{train,val}_excluded_timestamps_synth.csv   # empty (the file is expected)
    annotations/ava_action_list_synth.pbtxt                # item blocks: 1 walk .. 4 wave
    annotations/proposals_{train,val}.csv                  # "person detector": jittered truth
    synth.json                                             # the parameters

Keyframes are whole seconds at least one second from either end (AVA: 1 fps keyframes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deepvideo.data.synth.common import (
    SHAPES,
    affine_matrix,
    composite,
    make_sprite,
    textured_background,
    to_uint8,
)
from deepvideo.detect.actions.ava import (
    AvaBox,
    write_action_list,
    write_ava_csv,
    write_excluded,
    write_proposals,
)
from deepvideo.detect.actions.sampling import keyframe_index, keyframe_timestamps
from deepvideo.io.atomic import atomic_write_json
from deepvideo.io.writer import write_video

ACTIONS = {1: "walk", 2: "jump", 3: "spin", 4: "wave"}
PRIMARY = ("stand", "walk", "jump", "spin")


@dataclass(frozen=True)
class SynthParams:
    train_videos: int = 48
    val_videos: int = 16
    size: int = 96
    seconds: int = 6
    fps: float = 8.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 48:
            raise ValueError(f"size must be at least 48 pixels, got {self.size}")
        if self.seconds < 3:
            raise ValueError(f"seconds must be at least 3 (keyframes keep 1 s from the ends), "
                             f"got {self.seconds}")
        if self.train_videos < 1 or self.val_videos < 0:
            raise ValueError("train_videos must be >= 1 and val_videos >= 0")


@dataclass
class Actor:
    """One actor's motion over the video: body centre, angle, hand centre per frame."""

    primary: str
    wave: bool
    body: np.ndarray  # [T, 2]
    angle: np.ndarray  # [T]
    hand: np.ndarray  # [T, 2]
    radius: float
    hand_radius: float

    @property
    def actions(self) -> set[int]:
        names = ({self.primary} - {"stand"}) | ({"wave"} if self.wave else set())
        return {i for i, n in ACTIONS.items() if n in names}

    def boxes(self, size: int) -> np.ndarray:
        """Per-frame boxes ``[T, 4]`` (pixels) around body and hand, inside the image."""
        r, h = self.radius, self.hand_radius
        lo = np.minimum(self.body - r, self.hand - h)
        hi = np.maximum(self.body + r, self.hand + h)
        return np.clip(np.concatenate([lo, hi], 1), 0, size)


def triangle(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``x`` folded into ``[lo, hi]`` by reflection at the ends (a bouncing walk)."""
    span = hi - lo
    phase = np.mod(x - lo, 2 * span)
    return lo + np.where(phase <= span, phase, 2 * span - phase)


def plan_actor(rng: np.random.Generator, frames: int, size: int, slot: tuple[float, float]) -> Actor:
    """Draw one actor's actions and motion; ``slot`` is its horizontal range at rest."""
    t = np.arange(frames, dtype=np.float64)
    radius = rng.uniform(0.08, 0.11) * size
    hand_radius = 0.4 * radius
    primary = PRIMARY[int(rng.integers(len(PRIMARY)))]
    wave = primary == "stand" or bool(rng.random() < 0.5)
    x0 = rng.uniform(slot[0] + 0.5 * radius, max(slot[1] - 0.5 * radius, slot[0] + 0.5 * radius))
    ground = rng.uniform(size * 0.55, size - radius - 2)
    x, y = np.full(frames, x0), np.full(frames, ground)
    angle = np.full(frames, rng.uniform(0, 2 * math.pi))
    if primary == "walk":
        speed = rng.uniform(0.012, 0.022) * size * rng.choice([-1, 1])
        x = triangle(x0 + speed * t, radius + 1, size - radius - 1)
    elif primary == "jump":
        period = rng.uniform(6, 10)
        y = ground - rng.uniform(0.12, 0.2) * size * np.abs(np.sin(math.pi * t / period + rng.uniform(0, 3)))
    elif primary == "spin":
        angle = angle + rng.uniform(0.3, 0.5) * rng.choice([-1, 1]) * t
    offset = np.full(frames, rng.uniform(-0.5, 0.5) * radius)
    if wave:
        offset = 0.8 * radius * np.sin(2 * math.pi * t / rng.uniform(5, 8) + rng.uniform(0, 2 * math.pi))
    body = np.stack([x, y], 1)
    hand = np.stack([x + offset, y - radius - 0.9 * hand_radius], 1)
    return Actor(primary, wave, body, angle, hand, radius, hand_radius)


def render_video(rng: np.random.Generator, params: SynthParams) -> tuple[np.ndarray, list[Actor]]:
    """Frames ``uint8 [T, S, S, 3]`` and the actors of one video."""
    size, frames = params.size, int(round(params.seconds * params.fps))
    count = int(rng.integers(2, 4))
    edges = np.linspace(0.1 * size, 0.9 * size, count + 1)
    actors = [plan_actor(rng, frames, size, (edges[i], edges[i + 1])) for i in range(count)]
    background = textured_background(rng, size, size)
    sprites = []
    for actor in actors:
        body = make_sprite(rng, SHAPES[int(rng.integers(len(SHAPES)))], int(round(2 * actor.radius)) + 2)
        hand = make_sprite(rng, "circle", int(round(2 * actor.hand_radius)) + 2)
        sprites.append((body, hand))
    out = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        canvas = background.copy()
        for actor, (body, hand) in zip(actors, sprites, strict=True):
            for sprite, centre, angle in ((body, actor.body[f], actor.angle[f]), (hand, actor.hand[f], 0.0)):
                origin = ((sprite.rgba.shape[1] - 1) / 2, (sprite.rgba.shape[0] - 1) / 2)
                composite(canvas, sprite.rgba, affine_matrix(1.0, angle, tuple(centre), origin))
        out[f] = to_uint8(canvas)
    return out, actors


def keyframe_rows(video: str, actors: list[Actor], params: SynthParams) -> list[AvaBox]:
    frames = int(round(params.seconds * params.fps))
    rows = []
    for ts in keyframe_timestamps(frames, params.fps, margin=1.0):
        f = keyframe_index(ts, params.fps)
        for person, actor in enumerate(actors):
            box = tuple(float(round(v, 3)) for v in actor.boxes(params.size)[f] / params.size)
            rows += [AvaBox(video, ts, box, a, person) for a in sorted(actor.actions)]
    return rows


def proposals_from(rows: list[AvaBox], rng: np.random.Generator) -> dict:
    """A stand-in person detector: each person's true box, each side moved by up to 5% of
    its size, with a score in [0.8, 1]."""
    people = {(r.key, r.person): r.box for r in rows}
    out: dict = {}
    for (key, _), box in sorted(people.items(), key=str):
        b = np.asarray(box)
        wh = np.tile(b[2:] - b[:2], 2)
        moved = np.clip(b + rng.uniform(-0.05, 0.05, 4) * wh, 0, 1)
        moved[2:] = np.maximum(moved[2:], moved[:2] + 1e-3)
        out.setdefault(key, []).append([*moved, rng.uniform(0.8, 1.0)])
    return {k: np.asarray(v) for k, v in out.items()}


def write_synth(out: str | Path, params: SynthParams = SynthParams(), progress=None) -> dict:
    """Render the set under ``out``; returns a summary (videos and keyframes per split)."""
    out = Path(out)
    ann = out / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(exist_ok=True)
    root = np.random.SeedSequence([params.seed, 20])
    summary = {}
    splits = (("train", params.train_videos), ("val", params.val_videos))
    seeds = iter(root.spawn(params.train_videos + params.val_videos + 2))
    for split, count in splits:
        rows: list[AvaBox] = []
        for i in range(count):
            video = f"{split}_{i:04d}"
            frames, actors = render_video(np.random.default_rng(next(seeds)), params)
            write_video(out / "videos" / f"{video}.mp4", frames, fps=params.fps, crf=12, gop=8)
            rows += keyframe_rows(video, actors, params)
            if progress is not None:
                progress(split, i + 1, count)
        write_ava_csv(ann / f"ava_{split}_synth.csv", rows)
        write_excluded(ann / f"ava_{split}_excluded_timestamps_synth.csv", [])
        proposals = proposals_from(rows, np.random.default_rng(next(seeds)))
        write_proposals(ann / f"proposals_{split}.csv", proposals)
        summary[split] = {"videos": count, "keyframes": len({r.key for r in rows}), "rows": len(rows)}
    write_action_list(ann / "ava_action_list_synth.pbtxt", ACTIONS)
    atomic_write_json(out / "synth.json", {"params": asdict(params), "actions": ACTIONS, "splits": summary})
    return summary
