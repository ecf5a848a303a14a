"""Stream prediction: a file URL with a bounded count, POSTed predictions, Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from serve_helpers import colour_frames
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.io import VideoError, write_video
from deepvideo.serve.stream import stream_predictions

runner = CliRunner()


@pytest.fixture(scope="module")
def blue_red(tmp_path_factory):
    frames = colour_frames([("blue", 2), ("red", 3)])
    return write_video(tmp_path_factory.mktemp("s") / "br.mp4", frames, fps=10)


def test_stream_predictions_from_a_file_url(colour_scorer, blue_red):
    docs = list(stream_predictions(colour_scorer, f"file:{blue_red}", "1s", "1s", k=1))
    assert [(d["start"], d["end"]) for d in docs] == [(float(s), float(s + 1)) for s in range(5)]
    assert [d["top"][0]["class"] for d in docs] == ["blue", "blue", "red", "red", "red"]
    assert colour_scorer.calls == [1] * 5  # one window at a time, as soon as it is complete
    assert len(list(stream_predictions(colour_scorer, f"file:{blue_red}", "1s", "500ms", count=2))) == 2


def test_ctrl_c_stops_cleanly_and_closes_the_source(colour_scorer, blue_red, monkeypatch):
    import deepvideo.serve.stream as stream

    opened = []
    real_open = stream.open_source

    def spy(source, timeout_s=10.0):
        opened.append(real_open(source, timeout_s))
        return opened[-1]

    calls = {"n": 0}

    def interrupt_on_third(clips):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return type(colour_scorer).logits(colour_scorer, clips)

    monkeypatch.setattr(stream, "open_source", spy)
    monkeypatch.setattr(colour_scorer, "logits", interrupt_on_third)
    from deepvideo.cli.stream import predict_stream

    predict_stream(colour_scorer, f"file:{blue_red}", "1s", "1s", 1, None, None)  # returns, no traceback
    assert calls["n"] == 3
    assert len(opened) == 1 and len(opened[0].streams.video) == 0  # PyAV empties a closed container

def test_stream_cli_count_post_and_errors(tiny_run, blue_red):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        result = runner.invoke(app, ["predict", str(tiny_run), "--stream", f"file:{blue_red}",
                                     "--window", "1s", "--count", "2", "-k", "2", "--post", url])
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 2 and [d["window"] for d in lines] == [0, 1] and len(lines[0]["top"]) == 2
    assert received == lines
    result = runner.invoke(app, ["predict", str(tiny_run), "--stream", "file:/nonexistent/x.mp4"])
    assert result.exit_code == 1 and "cannot open the stream" in result.output
    with pytest.raises(VideoError, match="no.mp4"):
        next(stream_predictions(None, "/tmp/definitely/no.mp4"))
