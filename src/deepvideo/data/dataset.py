"""ClipDataset: records + a model's InputSpec -> clips ready for the model.

One item is ``{"rgb": float [3,T,H,W], "flow": float [2,T,H,W], "label": int, "index": int}``
with only the modalities the spec asks for (``rgbdiff`` models get ``rgb``; ``audio`` models get
``"audio": float [1, Ta, F]``, the log-mel spectrogram of the time span of the clip's RGB frames,
:mod:`deepvideo.data.audio`; a video without sound raises ``NoAudioError`` unless the spec's
``audio_missing="silence"``). In test mode
(``train=False``) every modality has a leading view dimension ``V = num_clips * crops``.
Frame indices come from :func:`deepvideo.data.sampling.build_sampler`, augmentation from
:func:`deepvideo.data.transforms.build_transforms`, frames from
:func:`deepvideo.io.open_video`.

Flow is read with :func:`deepvideo.flow.store.read_flow` from, in order: ``flow_root``
mirroring the video paths (``<flow_root>/<path relative to video_root, suffix removed>``, a
JPEG-pair folder, a folder holding ``flow.npz``, or ``<...>.npz``); the record's own folder
when it is a "rawframes" folder with ``x_00001.jpg``; otherwise it is computed on the fly
with ``compute_flow(method=flow_method)`` (DIS by default) from the decoded frames, which is
slow (tens of ms per field): extract flow once with ``deepvideo flow extract`` for real runs.

Randomness is a function of ``(seed, epoch, index)``: the sampler feeds ``(index, epoch)``
pairs (:class:`deepvideo.data.samplers.EpochSampler`) and each item draws from its own
``numpy.random.Generator``, so the clips do not depend on worker processes or their number,
and resumed or distributed runs see exactly the same data.

A video that cannot be read never ends an epoch: a warning names the file, the failure is
recorded in ``bad_items`` (and travels with the batch as ``"bad_items"`` so the training
process can list it in the run's report), and another index, chosen deterministically from
``(seed, epoch, index, attempt)``, is delivered instead (``"index"`` is the record actually
delivered). After ``max_retries`` failures in a row the item raises. Only decode and storage
errors (:data:`BAD_VIDEO_ERRORS`: :class:`~deepvideo.io.VideoError`, which the io readers
raise for every decoder and file failure, and :class:`~deepvideo.flow.store.FlowStoreError`)
make a video bad; any other exception (a sampler, transform or flow bug) propagates with its
traceback.

A video that decodes but is damaged (FFmpeg logs decoder errors and conceals the lost blocks,
see :mod:`deepvideo.io.decodelog`) is kept: the concealed frames are still images, mostly
right. A warning names the video, the number of errors and the frames, once per video and
process; ``deepvideo data check --full`` lists every such video to remove or re-encode.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, default_collate

from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.flow import compute_flow
from deepvideo.flow.store import FlowStoreError, num_flow_fields, read_flow
from deepvideo.io import VideoError, open_video
from deepvideo.spec import InputSpec

log = logging.getLogger("deepvideo.data")

_FLOW_MARKERS = ("x_00001.jpg", "flow.json", "flow.npz")

BAD_VIDEO_ERRORS = (VideoError, FlowStoreError)
"""What makes a video "bad" (skipped and listed): it cannot be decoded or its stored flow read."""


class ClipDataset(Dataset):
    """Clips of ``index`` shaped for a model with ``spec`` (see module docstring).

    ``sampler`` / ``transform`` replace the ones built from the spec (tests, custom recipes):
    ``sampler(num_frames, rng) -> {"rgb": int64 [V, T], "flow": int64 [V, T]}`` and
    ``transform(sample, rng) -> {"rgb": [3,T,h,w] | [C,3,T,h,w], "flow": ...}``.
    """

    def __init__(
        self,
        index: DatasetIndex,
        spec: InputSpec,
        train: bool,
        *,
        num_clips: int = 1,
        test_crops: int = 1,
        flip: bool | None = None,
        recipe: str = "standard",
        short_side: int | None = None,
        short_policy: str = "loop",
        flow_root: str | os.PathLike | None = None,
        video_root: str | os.PathLike | None = None,
        flow_method: str = "dis",
        seed: int = 0,
        max_retries: int = 10,
        sampler: Callable | None = None,
        transform: Callable | None = None,
    ):
        if len(index) == 0:
            raise ValueError("ClipDataset: the dataset index has no records (check the annotation files)")
        self.index = index
        self.records: list[VideoRecord] = list(index.records)
        self.classes = list(index.classes)
        self.spec = spec
        self.train = train
        self.num_clips = 1 if train else num_clips
        self.short_side = short_side
        self.flow_root = Path(flow_root) if flow_root else None
        self.video_root = Path(video_root) if video_root else None
        self.flow_method = flow_method
        self.seed = int(seed)
        self.max_retries = int(max_retries)
        self.epoch = 0
        self.bad_items: list[dict] = []
        self.damaged_warned: set[str] = set()  # damaged videos already warned about (this process)
        self.need_rgb = "rgb" in spec.batch_keys
        self.need_flow = "flow" in spec.batch_keys
        self.need_audio = "audio" in spec.batch_keys
        if sampler is None:
            from deepvideo.data.sampling import build_sampler

            sampler = build_sampler(spec, train=train, num_clips=self.num_clips, short_policy=short_policy)
        if transform is None:
            from deepvideo.data.transforms import build_transforms

            # flip: a random horizontal flip in training (default on; turn it off where a flip
            # changes the label, e.g. left/right motion classes), extra flipped views in testing.
            kw = {"recipe": recipe, "short_side": short_side, "flip": flip}
            if not train:
                kw["test_crops"] = test_crops
            transform = build_transforms(spec, train=train, **kw)
        self.sampler = sampler
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer indices (an ``(index, epoch)`` key overrides it)."""
        self.epoch = int(epoch)

    def rng(self, index: int, epoch: int, attempt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index, attempt])

    def record_bad(self, items: list[dict]) -> None:
        """Add failures reported by worker processes (deduplicated by path)."""
        known = {b["path"] for b in self.bad_items}
        for item in items:
            if item["path"] not in known:
                self.bad_items.append(dict(item))
                known.add(item["path"])

    def __getitem__(self, key) -> dict:
        index, epoch = (
            (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), self.epoch)
        )
        failures: list[dict] = []
        current = index
        for attempt in range(self.max_retries + 1):
            rec = self.records[current]
            try:
                item = self.load(current, self.rng(current, epoch, attempt))
                if failures:
                    item["bad_items"] = failures
                return item
            except BAD_VIDEO_ERRORS as e:
                failure = {"path": rec.path, "source": rec.source, "error": f"{type(e).__name__}: {e}"}
                log.warning("skipping unreadable video %s (%s); delivering another clip", rec.path, e)
                failures.append(failure)
                self.record_bad([failure])
                current = int(
                    np.random.default_rng([self.seed, epoch, index, attempt, 1]).integers(len(self))
                )
        paths = ", ".join(f["path"] for f in failures[:5])
        raise RuntimeError(
            f"{self.max_retries + 1} videos in a row could not be read ({paths}); "
            "check the dataset with `deepvideo data check`"
        )

    # loading ----------------------------------------------------------------------------
    def load(self, i: int, rng: np.random.Generator) -> dict:
        """Item ``i`` with randomness from ``rng``; raises one of :data:`BAD_VIDEO_ERRORS` on
        unreadable input."""
        rec = self.records[i]
        flow_path = self.flow_path(rec) if self.need_flow else None
        reader = None
        try:
            if self.need_rgb or self.need_audio or (self.need_flow and flow_path is None):
                reader = _open(rec, self.short_side)
                num_frames = rec.num_frames or len(reader)
            else:
                num_frames = num_flow_fields(flow_path) + 1
            if num_frames < 1:  # only a record's own count can be < 1 (readers refuse empty videos)
                raise ValueError(f"{rec.source or rec.path}: the record says {rec.path} has {num_frames} "
                                 "frames; fix the annotation")
            idx = self.sampler(num_frames, rng)
            views = {}
            if self.need_rgb:
                views["rgb"] = _read_frames(reader, np.asarray(idx["rgb"]))  # [V,T,H,W,3]
            if self.need_flow:
                fidx = np.asarray(idx["flow"])
                if flow_path is not None:
                    views["flow"] = _read_stored_flow(flow_path, fidx)
                else:
                    views["flow"] = self._computed_flow(reader, fidx, rec)
            audio = self._audio(rec, reader, np.asarray(idx["rgb"])) if self.need_audio else None
        finally:
            if reader is not None and hasattr(reader, "close"):
                reader.close()
        self._warn_damaged(rec, reader)
        if "rgb" in views and "flow" in views:  # stored flow may have another resolution
            h, w = views["rgb"].shape[2:4]
            views["flow"] = _resize_flow(views["flow"], h, w)
        outs = []
        num_views = next(iter(views.values())).shape[0] if views else 0
        for v in range(num_views):
            outs.append(self.transform({k: x[v] for k, x in views.items()}, rng))
        item = {}
        for k in views:
            stacked = torch.stack([o[k] for o in outs])  # [V, (C,) ch, T, h, w]
            if stacked.dim() == 6:
                stacked = stacked.flatten(0, 1)
            item[k] = stacked[0] if self.train else stacked
        if audio is not None:  # [V, 1, Ta, F], repeated for the crops / flips of each clip
            crops = item[next(iter(views))].shape[0] // audio.shape[0] if views and not self.train else 1
            audio = audio.repeat_interleave(crops, dim=0)
            item["audio"] = audio[0] if self.train else audio
        item["label"] = self._label(rec)
        item["index"] = i
        return item

    def _audio(self, rec: VideoRecord, reader, frame_idx: np.ndarray) -> torch.Tensor:
        """Log-mel windows ``[V, 1, Ta, F]`` over the time spans of the clips' frames ``[V, T]``."""
        from deepvideo.data.audio import clip_log_mel, read_audio

        spec, fps = self.spec, getattr(reader, "fps", None)
        if not fps:
            raise ValueError(f"{rec.path}: no frame rate known, cannot align its audio with the frames")
        # a video without audio raises NoAudioError (not a "bad video": the whole set needs sound)
        samples = read_audio(rec.path, spec.audio_rate, spec.audio_missing, duration=len(reader) / fps)
        return torch.stack([clip_log_mel(samples, v, fps, spec.audio_rate, spec.audio_frames, spec.audio_mels)
                            for v in frame_idx])

    def _warn_damaged(self, rec: VideoRecord, reader) -> None:
        """Warn once per video when decoding it logged errors (kept: see the module docstring)."""
        damage = getattr(reader, "damage", None)
        if damage and rec.path not in self.damaged_warned:
            self.damaged_warned.add(rec.path)
            log.warning("damaged video %s: %s; FFmpeg concealed the damage and the clip is used as "
                        "decoded (list such videos with `deepvideo data check --full`)",
                        rec.path, damage.describe())

    def _label(self, rec: VideoRecord):
        if isinstance(rec.label, (tuple, list)):
            target = torch.zeros(len(self.classes))
            target[list(rec.label)] = 1.0
            return target
        return int(rec.label)

    def flow_path(self, rec: VideoRecord) -> Path | None:
        """Where stored flow for ``rec`` lives, or None (computed on the fly).

        Under ``flow_root`` the video's path relative to ``video_root`` (suffix removed) is
        tried first, then the same path without its leading folders one at a time (flow
        extracted from a sub-folder of the dataset root, e.g. ``UCF-101/``), down to the bare
        video name.
        """
        path = Path(rec.path)
        if self.flow_root is not None:
            rel = None
            if self.video_root is not None:
                try:
                    rel = path.resolve().relative_to(self.video_root.resolve())
                except ValueError:
                    rel = None
            if rel is None:
                rel = Path(*path.parts[-3:]) if len(path.parts) >= 3 else Path(path.name)
            stem = rel.with_suffix("") if path.suffix and not path.is_dir() else rel
            for k in range(len(stem.parts)):
                tail = Path(*stem.parts[k:])
                for cand in (self.flow_root / tail, self.flow_root / f"{tail}.npz"):
                    if cand.is_file() or any((cand / m).exists() for m in _FLOW_MARKERS):
                        return cand
        if path.is_dir() and any((path / m).exists() for m in _FLOW_MARKERS):
            return path
        return None

    def _computed_flow(self, reader, fidx: np.ndarray, rec: VideoRecord) -> torch.Tensor:
        flat = fidx.reshape(-1)
        valid = np.unique(flat[flat >= 0])
        if valid.size == 0:
            raise VideoError(rec.path, "too short to compute optical flow (a field needs two frames)")
        frames = reader.get_frames(np.concatenate([valid, valid + 1]).tolist())
        prev, nxt = frames[: len(valid)], frames[len(valid) :]
        fields = compute_flow((prev, nxt), method=self.flow_method)  # [U,2,H,W]
        lookup = {int(t): k for k, t in enumerate(valid)}
        out = torch.zeros((*fidx.shape, *fields.shape[1:]), dtype=torch.float32)
        for pos, t in np.ndenumerate(fidx):
            if t >= 0:
                out[pos] = fields[lookup[int(t)]]
        return out


def _open(rec: VideoRecord, short_side: int | None):
    kw = {}
    if short_side:
        kw["short_side"] = short_side
    if not Path(rec.path).is_dir():
        # FFmpeg's decoder reports are captured through a process-global log callback that
        # takes the GIL: with FFmpeg's own decoder threads logging into it while Python waits
        # on the decoder, the process can deadlock (PyAV leaves logging off for this reason).
        # One decoder thread per reader (DataLoader workers decode in parallel) keeps it safe.
        kw["report_damage"] = True
        kw["threads"] = 1
    else:
        # VideoRecord.start_index is the first frame number; 0 is also the "unset" default,
        # so a folder without img_00000.jpg is read from 1 (the MMAction2/TSN convention).
        start = rec.start_index
        if start == 0 and not (Path(rec.path) / "img_00000.jpg").exists():
            start = 1
        kw["start_index"] = start
    return open_video(rec.path, **kw)


def _read_frames(reader, idx: np.ndarray) -> torch.Tensor:
    """uint8 ``[V,T,H,W,3]``; index -1 gives a black padding frame."""
    flat = idx.reshape(-1)
    frames = reader.get_frames(np.maximum(flat, 0).tolist())
    frames = torch.as_tensor(frames)
    if (flat < 0).any():
        frames = frames.clone()
        frames[torch.from_numpy(flat < 0)] = 0
    return frames.reshape(*idx.shape, *frames.shape[1:])


def _read_stored_flow(path: Path, idx: np.ndarray) -> torch.Tensor:
    flat = idx.reshape(-1)
    try:
        fields = read_flow(path, np.maximum(flat, 0))
    except IndexError as exc:  # read_flow's out-of-range index: fewer fields stored than the video has
        raise FlowStoreError(f"{path}: {exc}; the stored flow is shorter than its video, re-extract it "
                             "with `deepvideo flow extract`") from exc
    if (flat < 0).any():
        fields = fields.clone()
        fields[torch.from_numpy(flat < 0)] = 0
    return fields.reshape(*idx.shape, *fields.shape[1:])


def _resize_flow(flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Resize ``[..., 2, H, W]`` flow to ``h x w``, scaling u by w/W and v by h/H."""
    fh, fw = flow.shape[-2:]
    if (fh, fw) == (h, w):
        return flow
    lead = flow.shape[:-3]
    out = F.interpolate(flow.reshape(-1, 2, fh, fw), size=(h, w), mode="bilinear", align_corners=False)
    out[:, 0] *= w / fw
    out[:, 1] *= h / fh
    return out.reshape(*lead, 2, h, w)


class MultiTaskDataset(Dataset):
    """Several datasets, one per task head, concatenated for multi-task training.

    ``MultiTaskDataset({"ucf101": ds_a, "hmdb51": ds_b})``: item ``i`` is the item of the dataset
    it falls in, plus ``label_<head>`` for every head: its own label for its own head and -1
    for the others (the engine's per-head loss ignores -1), as in Simonyan & Zisserman's (2014)
    multi-task training on UCF101 + HMDB51. ``"index"`` stays the index in its own dataset.
    Keys may be ``(index, epoch)`` pairs like :class:`ClipDataset`.
    """

    def __init__(self, datasets: dict[str, Dataset]):
        if not datasets:
            raise ValueError("MultiTaskDataset needs at least one (head name -> dataset) entry")
        self.datasets = dict(datasets)
        self.head_names = list(self.datasets)
        self.head_classes = {h: list(getattr(d, "classes", [])) for h, d in self.datasets.items()}
        self.classes = self.head_classes[self.head_names[0]]
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets.values()])
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def bad_items(self) -> list[dict]:
        seen: dict[str, dict] = {}
        for d in self.datasets.values():
            for b in getattr(d, "bad_items", []):
                seen.setdefault(b["path"], b)
        return list(seen.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for d in self.datasets.values():
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def record_bad(self, items: list[dict]) -> None:
        for d in self.datasets.values():  # deduplicated by path in each dataset
            if hasattr(d, "record_bad"):
                d.record_bad(items)

    def __getitem__(self, key) -> dict:
        index, epoch = (
            (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), self.epoch)
        )
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        t = int(np.searchsorted(self.offsets, index, side="right")) - 1
        head = self.head_names[t]
        item = self.datasets[head][(index - int(self.offsets[t]), epoch)]
        for h in self.head_names:
            item[f"label_{h}"] = int(item["label"]) if h == head else -1
        return item


def collate_clips(items: list[dict]) -> dict:
    """``default_collate`` that gathers the items' ``bad_items`` lists into one list."""
    bad = []
    for it in items:
        bad.extend(it.pop("bad_items", ()))
    batch = default_collate(items)
    batch["bad_items"] = bad
    return batch


def seed_worker(worker_id: int) -> None:
    """Seed numpy's and python's global generators from torch's per-worker seed.

    Each item draws from its own ``(seed, epoch, index)`` Generator; this covers code that
    uses the global generators anyway (third-party augmentation).
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    *,
    num_workers: int = 2,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
    drop_last: bool | None = None,
    persistent_workers: bool = True,
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """DataLoader with the engine's samplers, per-worker seeding and clip collation.

    Training uses :class:`~deepvideo.data.samplers.EpochSampler` (shuffled from
    ``(seed, epoch)``, sharded over ``world_size`` ranks, last incomplete batch dropped by
    default); evaluation uses :class:`~deepvideo.data.samplers.ShardSampler` (in order, no
    padding). ``batch_size`` is per process. Memory is pinned only for CUDA; workers persist
    across epochs (the epoch travels with each index). Call ``loader.sampler.set_epoch(e)``.
    ``multiprocessing_context="forkserver"`` starts workers from a fork server: safer in a process
    that already runs many threads (forking one can deadlock a worker), slower to start.
    """
    from deepvideo.data.samplers import EpochSampler, ShardSampler

    if train:
        sampler = EpochSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
    else:
        sampler = ShardSampler(dataset, num_replicas=world_size, rank=rank)
    g = torch.Generator()
    g.manual_seed(seed * 1000 + rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_clips,
        pin_memory=torch.device(device).type == "cuda",
        drop_last=train if drop_last is None else drop_last,
        worker_init_fn=seed_worker,
        generator=g,
        persistent_workers=persistent_workers and num_workers > 0,
        prefetch_factor=2 if num_workers > 0 else None,
        multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
    )
