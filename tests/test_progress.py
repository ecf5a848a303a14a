"""Progress off a terminal: plain lines with count, rate and ETA (captured output is not a tty)."""

from __future__ import annotations

import io

from rich.progress import Progress

from deepvideo.progress import LineProgress, make_progress, progress_task, stage_line, track


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_prints_every_step_with_count_rate_and_eta():
    out, clock = io.StringIO(), FakeClock()
    with LineProgress("clips", file=out, step=0.25, interval=100.0, min_gap=0.0, clock=clock) as p:
        task = p.add_task("epoch 1/2", total=8, status="")
        for _ in range(8):
            clock.now += 0.5  # 2 clips/s
            p.update(task, advance=1, status="loss 0.5")
    lines = out.getvalue().splitlines()
    assert lines == [
        "epoch 1/2: 0/8 clips, 0%, elapsed 0:00:00 [started]",
        "epoch 1/2: 2/8 clips, 25%, 2.0 clips/s, elapsed 0:00:01, ETA 0:00:03 | loss 0.5",
        "epoch 1/2: 4/8 clips, 50%, 2.0 clips/s, elapsed 0:00:02, ETA 0:00:02 | loss 0.5",
        "epoch 1/2: 6/8 clips, 75%, 2.0 clips/s, elapsed 0:00:03, ETA 0:00:01 | loss 0.5",
        "epoch 1/2: 8/8 clips, 100%, 2.0 clips/s, elapsed 0:00:04 | loss 0.5 [done]",
    ]


def test_line_progress_time_lines_min_gap_and_unfinished_tasks():
    out, clock = io.StringIO(), FakeClock()
    p = LineProgress("videos", file=out, step=0.1, interval=10.0, min_gap=1.0, clock=clock)
    p.start()
    fast = p.add_task("fast", total=100)
    for _ in range(100):  # 100 items in 0.5 s: every 10 % step comes sooner than min_gap
        clock.now += 0.005
        p.advance(fast)
    endless = p.add_task("stream", total=None)
    for _ in range(25):  # no total: a line every `interval` seconds only
        clock.now += 1.0
        p.advance(endless, 2)
    p.stop()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["fast", "fast", "stream", "stream", "stream", "stream"]
    assert lines[1].startswith("fast: 100/100 videos, 100%, 200.0 videos/s") and lines[1].endswith("[done]")
    assert lines[3].startswith("stream: 20 videos, 2.0 videos/s, elapsed 0:00:10")
    assert lines[4].startswith("stream: 40 videos") and lines[5].startswith("stream: 50 videos")
    assert lines[5].endswith("[stopped]") and "ETA" not in lines[5]


def test_make_progress_off_a_terminal_prints_lines_and_keeps_the_api(capsys):
    progress = make_progress("clips")  # pytest's captured stderr is not a tty
    assert isinstance(progress, LineProgress)
    with progress:  # the engine's RunLogger: start, add_task, update(completed/advance/status), stop
        task = progress.add_task("epoch 1/1", total=4, status="")
        progress.update(task, completed=2)
        progress.update(task, advance=2, status="loss 1.0")
    assert isinstance(make_progress("clips", disable=True), Progress)  # disabled: prints nothing
    assert list(track(range(3), "items", disable=True)) == [0, 1, 2]
    with progress_task("copy", total=2, unit="files") as advance:
        advance(1)
        advance(1, status="all copied")
    stage_line("demo: flow done")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "epoch 1/1: 0/4 clips, 0%, elapsed 0:00:00 [started]"
    assert err[1].startswith("epoch 1/1: 4/4 clips, 100%") and err[1].endswith("| loss 1.0 [done]")
    assert err[2].startswith("copy: 0/2 files") and err[3].startswith("copy: 2/2 files, 100%")
    assert err[3].endswith("| all copied [done]") and err[4] == "demo: flow done" and len(err) == 5
