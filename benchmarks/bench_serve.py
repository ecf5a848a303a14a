"""Load test of ``deepvideo serve`` on loopback: concurrent clients uploading the real sample
videos, then the malformed-upload corpus.

The server is a separate process (``deepvideo serve`` on a tiny R(2+1)D-18 run, width 8,
4 frames of 32x32, default 2 s windows every 1 s), with ``TMPDIR`` pointing at an empty folder
and ``--work-dir`` at another: afterwards the first must still be empty and the second hold no
upload folder. ``--clients`` threads each upload the samples of ``../shared/data/video``
``--rounds`` times (``POST /predict``); every response must be 200. Latency is per request
(upload to response); memory is the server's peak resident set (``VmHWM``) against its resident
set when idle after start-up. The malformed uploads (a 0-byte file, a text file renamed .mp4,
the first third of an mp4, an ``ftyp`` box followed by garbage, a RIFF/AVI header followed by
garbage, a multipart part with a 100 kB header) must all get a 4xx.

    python benchmarks/bench_serve.py [--clients 4] [--rounds 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402

SAMPLES = ("test.mp4", "bikes.mp4", "demo.mp4", "bigbuckbunny.mp4", "test.avi")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


def start_server(run: Path, work: Path, tmp: Path, workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "deepvideo", "serve", str(run), "--port", str(port), "--work-dir", str(work),
           "--workers", str(workers), "--queue", str(queue)]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def load(url: str, clients: int, rounds: int) -> tuple[list[float], list[str]]:
    paths = [SHARED_DATA / "video" / n for n in SAMPLES if (SHARED_DATA / "video" / n).is_file()]
    latencies, errors, lock = [], [], threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(timeout=600) as c:
            for r in range(rounds):
                path = paths[(i + r) % len(paths)]
                start = time.perf_counter()
                resp = c.post(url + "/predict", files={"file": (path.name, path.read_bytes())})
                with lock:
                    latencies.append(time.perf_counter() - start)
                    if resp.status_code != 200:
                        errors.append(f"{path.name}: {resp.status_code} {resp.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def malformed(url: str, folder: Path) -> dict[str, int]:
    sample = (SHARED_DATA / "video" / "test.mp4").read_bytes()
    corpus = {"empty.mp4": b"", "notes.mp4": b"plain text renamed to .mp4\n" * 50,
              "truncated.mp4": sample[: len(sample) // 3],
              "ftyp_garbage.mp4": b"\x00\x00\x00\x18ftypisom" + os.urandom(4096),
              "riff_garbage.avi": b"RIFF\x00\x10\x00\x00AVI LIST" + os.urandom(4096)}
    out = {}
    with httpx.Client(timeout=120) as c:
        for name, data in corpus.items():
            out[name] = c.post(url + "/predict", files={"file": (name, data)}).status_code
        body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"h.mp4\"\r\nX-Pad: "
                + b"p" * 100_000 + b"\r\n\r\ndata\r\n--b--\r\n")
        headers = {"content-type": "multipart/form-data; boundary=b"}
        out["huge_part_header"] = c.post(url + "/predict", content=body, headers=headers).status_code
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    load = round(os.getloadavg()[0], 1)  # other processes on the machine slow the server down
    from deepvideo.serve.runs import build_model, save_run

    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        kwargs, spec = {"width": 8}, {"num_frames": 4, "crop_size": 32}
        run = save_run(root / "run", build_model("r2plus1d_18", 3, kwargs, spec), ["a", "b", "c"],
                       kwargs=kwargs, spec=spec)
        work, tmp = root / "work", root / "tmp"
        tmp.mkdir()
        proc, url = start_server(run, work, tmp, args.workers, args.clients)
        try:
            idle_kb = _status_kb(proc.pid, "VmRSS:")
            start = time.perf_counter()
            latencies, errors = load(url, args.clients, args.rounds)
            wall = time.perf_counter() - start
            peak_kb = _status_kb(proc.pid, "VmHWM:")
            bad = malformed(url, root)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        leftovers = [str(p) for p in tmp.rglob("*")] + [str(p) for p in work.rglob("req-*")]
    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    rows = [[args.clients, args.workers, len(lat), round(len(lat) / wall, 3),
             round(statistics.median(lat), 3), round(p99, 3), len(errors), round(idle_kb / 1024),
             round(peak_kb / 1024), all(400 <= s < 500 for s in bad.values()), len(leftovers)]]
    columns = ["clients", "workers", "requests", "requests/s", "p50 s", "p99 s", "errors", "idle RSS MB",
               "peak RSS MB", "malformed all 4xx", "files left outside work"]
    print(dict(zip(columns, rows[0], strict=True)), bad, errors[:3], leftovers[:3])
    print(write_result("serve", title="Serving: loopback load test of deepvideo serve",
                       command="python benchmarks/bench_serve.py", description=__doc__.split("\n\n")[1]
                       + "\n\n" + __doc__.split("\n\n")[2],
                       columns=columns, rows=rows,
                       summary={"errors": len(errors), "malformed_status": bad,
                                "leftover_files": len(leftovers), "load_average_at_start": load}))


if __name__ == "__main__":
    main()
