"""The web page in a real headless browser (Chromium through Selenium): upload a real sample
video, see the top-k table, the timeline and the current prediction under the video.

The server runs once for the module (uvicorn on a free loopback port, in a thread). Skips with
a clear message only when no Chromium / chromedriver is found (`make test` installs them with
apt on a fresh CI machine).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
                 if Path(p).exists()), None)
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                          else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="no headless browser: install chromium and chromium-driver "
                                       "(apt-get install -y chromium chromium-driver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    import uvicorn

    from deepvideo.serve.app import ServeSettings
    from deepvideo.serve.routes import create_app
    from deepvideo.serve.scorer import load_scorer

    app = create_app({"tiny": load_scorer(tiny_run)},
                     ServeSettings(work_dir=tmp_path_factory.mktemp("work"), window="1s", stride="1s"))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_a_real_video_shows_the_results(server, browser, test_mp4):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "model").get_attribute("value") == "tiny")
    assert browser.find_element(By.ID, "window").get_attribute("value") == "1s"
    browser.find_element(By.ID, "file").send_keys(str(test_mp4))
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#topk tbody tr")
    assert len(rows) == 3  # the tiny model has 3 classes (top_k 5 -> all of them)
    cells = [r.find_elements(By.TAG_NAME, "td") for r in rows]
    assert {c[1].text for c in cells} == {"red", "green", "blue"}
    probs = [float(c[2].text) for c in cells]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 0.01
    assert browser.find_element(By.ID, "status").text == "done"
    assert browser.find_element(By.ID, "current").text.startswith("0.0-1.0 s: ")
    legend = browser.find_element(By.ID, "legend").text
    assert any(name in legend for name in ("red", "green", "blue"))
    painted = browser.execute_script(
        "const c = document.getElementById('timeline');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, 10).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;")
    assert painted > 0.9 * 900 * 10  # the timeline covers the canvas width


def test_bad_upload_shows_the_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "model").get_attribute("value"))
    browser.find_element(By.ID, "file").send_keys(str(text))
    error = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").text)
    assert error.startswith("415: notes.mp4: not a video")
