"""The FastAPI application over a :class:`~deepvideo.serve.app.ServeApp` (endpoints: see that module)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from deepvideo.serve.app import ServeApp, ServeSettings
from deepvideo.serve.upload import BadInput


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(scorers: dict, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``scorers`` (name -> scorer); ``app.state.serve`` holds the state."""
    from deepvideo.serve.page import INDEX_HTML, SCRIPT_JS, STYLE_CSS

    state = ServeApp(scorers, settings or ServeSettings())
    app = FastAPI(title="deepvideo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = state
    app.router.on_shutdown.append(state.close)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, err: BadInput):
        return _error(err.status, err.message)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(INDEX_HTML)

    @app.get("/app.js")
    async def script():
        return Response(SCRIPT_JS, media_type="text/javascript")

    @app.get("/style.css")
    async def style():
        return Response(STYLE_CSS, media_type="text/css")

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": len(state.scorers), "pending": state.pool.pending,
                "capacity": state.pool.capacity}

    @app.get("/models")
    async def models(request: Request):
        state.check_token(request.headers)
        s_ = state.settings
        return {"models": [{"name": name, "classes": s.class_names, "input_spec": s.spec.to_dict(),
                            "short_side": s.short_side} for name, s in state.scorers.items()],
                "limits": {"max_upload_mb": s_.max_upload_mb, "max_duration_s": s_.max_duration_s,
                           "max_side": s_.max_side},
                "defaults": {"window": s_.window, "stride": s_.stride, "top_k": s_.top_k,
                             "smooth": s_.smooth}}

    @app.post("/predict")
    async def predict(request: Request):
        job = await state.start(request)
        await asyncio.wrap_future(job.future)
        if job.error is not None:
            return _error(*job.error)
        return job.result

    @app.post("/jobs", status_code=202)
    async def start_job(request: Request):
        job = await state.start(request)
        return {"id": job.id, "url": f"/jobs/{job.id}"}

    @app.get("/jobs/{job_id}")
    async def job_state(job_id: str, request: Request):
        state.check_token(request.headers)
        job = state.pool.get(job_id)
        if job is None:
            return _error(404, f"no job {job_id!r} (finished jobs are kept for a while only)")
        return job.public()

    return app
