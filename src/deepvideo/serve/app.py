"""The HTTP app of ``deepvideo serve`` (FastAPI): predictions over uploaded or server-side
videos, a model list, a health check and the web page.

Endpoints
    ``GET /`` the web page; ``GET /health``; ``GET /models``;
    ``POST /predict`` (multipart ``file`` upload, or a ``path`` field under the allowed root;
    optional ``window``, ``stride``, ``smooth``, ``top_k``, ``model`` fields) -> top-k and the
    timeline; ``POST /jobs`` (the same input) -> ``202 {"id"}``, then ``GET /jobs/{id}`` ->
    state, stage, progress and, when done, the result (the web page polls it).

Bad input is a 4xx naming what is wrong, never a 5xx: 400 empty or malformed body, 401 missing
or wrong token, 403 a path outside the allowed root, 404 unknown model or job, 413 too large,
415 not a video container (sniffed from the content), 422 a video that cannot be decoded or
exceeds the duration / resolution limits; 503 when the worker pool and its queue are full.
Uploads go to a private folder (mode 0700) under the work folder and are deleted when the
prediction ends.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepvideo.io.errors import VideoError
from deepvideo.io.paths import UnsafePathError, relative_to_root, safe_output_path
from deepvideo.serve.jobs import Busy, Job, JobPool
from deepvideo.serve.longvideo import DEFAULT_STRIDE, DEFAULT_WINDOW, predict_long_video
from deepvideo.serve.timeline import top_k
from deepvideo.serve.upload import BadInput, check_sniffed, receive_form

log = logging.getLogger(__name__)
CHUNK_SLACK = 64 * 1024  # multipart boundaries and form fields around the file


@dataclass
class ServeSettings:
    """Limits and options of the app (``deepvideo serve`` flags)."""

    max_upload_mb: float = 200.0
    max_duration_s: float = 600.0
    max_side: int = 4096  # largest accepted width or height, pixels
    allowed_root: Path | None = None  # server-side paths must lie under it (None: no paths)
    token: str | None = None  # required as "Authorization: Bearer <token>" when set
    workers: int = 1
    queue: int = 4
    work_dir: Path | None = None  # private folders for uploads (default: a new temporary folder)
    window: str = DEFAULT_WINDOW
    stride: str = DEFAULT_STRIDE
    smooth: int = 3
    top_k: int = 5


def _int_field(fields: dict, name: str, default: int, lo: int, hi: int) -> int:
    text = fields.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadInput(400, f"{name} must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise BadInput(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


def check_limits(path: Path, shown: str, settings: ServeSettings) -> dict:
    """Open and decode-check the video (first and last frames, truncation); 422 when it is bad
    or beyond the limits. Returns its size, frame rate and duration."""
    from deepvideo.data.check import check_video

    check = check_video(str(path))
    if not check.ok:
        raise BadInput(422, f"{shown}: {check.reason}")
    duration = check.duration or ((check.num_frames or 0) / check.fps if check.fps else 0.0)
    if duration > settings.max_duration_s:
        raise BadInput(422, f"{shown}: too long: {duration:.1f} s "
                            f"(the limit is {settings.max_duration_s:g} s)")
    if max(check.width or 0, check.height or 0) > settings.max_side:
        raise BadInput(422, f"{shown}: resolution {check.width}x{check.height} is above the limit of "
                            f"{settings.max_side} pixels a side")
    return {"width": check.width, "height": check.height, "fps": check.fps, "duration": duration,
            "frames": check.num_frames}


def predict_job(job: Job, scorer, video: Path, shown: str, options: dict, settings: ServeSettings) -> dict:
    """Check the video, predict its timeline (progress into ``job``), return the response body."""
    job.stage = "checking"
    info = check_limits(video, shown, settings)
    job.stage = "decoding and predicting"

    def progress(done: int, total: int) -> None:
        job.progress = min(1.0, done / total) if total else 0.0

    try:
        timeline = predict_long_video(scorer, video, options["window"], options["stride"],
                                      smooth=options["smooth"], threads=1, on_window=progress)
    except VideoError as err:
        raise BadInput(422, f"{shown}: decoding failed: {err.reason}") from None
    except ValueError as err:  # window / stride text, or non-finite scores of this video
        raise BadInput(422, f"{shown}: {err}") from None
    probs = np.mean(timeline.probs, axis=0) if timeline.probs else np.zeros(len(scorer.class_names))
    k = options["top_k"]
    job.progress, job.stage = 1.0, "done"
    return {"model": scorer.name, "video": shown, **info, "top": top_k(probs, scorer.class_names, k),
            "timeline": {**timeline.to_dict(k), "source": shown}}


class ServeApp:
    """The state behind the FastAPI app: scorers by name, settings, the pool, the work folder."""

    def __init__(self, scorers: dict, settings: ServeSettings):
        if not scorers:
            raise ValueError("serve needs at least one model")
        self.scorers, self.settings = scorers, settings
        self.pool = JobPool(settings.workers, settings.queue)
        root = settings.work_dir
        if root is not None:
            Path(root).mkdir(parents=True, exist_ok=True)
        self.work_dir = Path(tempfile.mkdtemp(prefix="deepvideo-serve-", dir=root))  # ours: removed at close

    def check_token(self, headers) -> None:
        token = self.settings.token
        if not token:
            return
        given = headers.get("authorization", "")
        given = given[7:] if given.lower().startswith("bearer ") else headers.get("x-api-token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise BadInput(401, "missing or wrong API token (send 'Authorization: Bearer <token>')")

    def server_path(self, text: str) -> Path:
        root = self.settings.allowed_root
        if root is None:
            raise BadInput(403, "server-side paths are disabled (start the server with --allowed-root)")
        try:
            rel = relative_to_root(text, root) if Path(text).is_absolute() else Path(text)
            path = safe_output_path(root, rel)
        except UnsafePathError:
            raise BadInput(403, f"{text!r} is outside the allowed root") from None
        if not path.is_file():
            raise BadInput(404, f"{text!r}: no such file under the allowed root")
        return path

    async def accept(self, request) -> tuple[Path, str, dict, Path]:
        """Read the request into a private folder: ``(video, shown name, options, folder)``."""
        s = self.settings
        limit = int(s.max_upload_mb * 2**20)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + CHUNK_SLACK:
            raise BadInput(413, f"upload larger than the limit of {s.max_upload_mb:g} MB")
        folder = Path(tempfile.mkdtemp(prefix="req-", dir=self.work_dir))
        try:
            upload = await receive_form(request.headers.get("content-type", ""), request.stream(),
                                             folder, limit)
            fields = upload.fields
            options = {"window": fields.get("window") or s.window, "stride": fields.get("stride") or s.stride,
                       "smooth": _int_field(fields, "smooth", s.smooth, 1, 1000),
                       "top_k": _int_field(fields, "top_k", s.top_k, 1, 1000),
                       "model": fields.get("model") or next(iter(self.scorers))}
            if options["model"] not in self.scorers:
                raise BadInput(404, f"unknown model {options['model']!r} (GET /models)")
            if upload.path is not None:
                shown = Path(upload.filename).name or "upload"
                video = upload.path
            elif fields.get("path"):
                video, shown = self.server_path(fields["path"]), fields["path"]
            else:
                raise BadInput(400, "no video: send a 'file' part or a 'path' field")
            await asyncio.to_thread(check_sniffed, video, shown)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return video, shown, options, folder

    def run(self, job: Job, video: Path, shown: str, options: dict, folder: Path) -> None:
        """The worker side of a job: predict, record the result or the 4xx, delete the folder."""
        try:
            scorer = self.scorers[options["model"]]
            job.result = predict_job(job, scorer, video, shown, options, self.settings)
            job.state = "done"
        except BadInput as err:
            job.error, job.state, job.stage = (err.status, err.message), "error", "error"
        except Exception:  # a bug: logged with its traceback, a 500 for the client
            log.exception("prediction of %s failed", shown)
            job.error, job.state, job.stage = (500, "internal error (see the server log)"), "error", "error"
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def start(self, request) -> Job:
        """Admit a request: token, a place in the pool, the input; the job is then queued."""
        self.check_token(request.headers)
        try:
            job = self.pool.reserve()
        except Busy as err:
            raise BadInput(503, str(err)) from None
        try:
            video, shown, options, folder = await self.accept(request)
        except BaseException:
            self.pool.release(job)
            raise
        self.pool.submit(job, lambda j: self.run(j, video, shown, options, folder))
        return job

    def close(self) -> None:
        self.pool.shutdown()
        shutil.rmtree(self.work_dir, ignore_errors=True)
