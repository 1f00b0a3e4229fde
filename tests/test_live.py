"""The live page (`stream --serve`): its server's rules, and the page in a real browser."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesleep.errors import UsageError
from edgesleep.live import LivePage, parse_address
from edgesleep.sources import Packet, StreamInfo
from edgesleep.stager import EpochResult

CHROMEDRIVER = "/usr/bin/chromedriver"


def _get(page: LivePage, path: str, host: str | None = None, method: str = "GET",
         timeout: float = 5) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", page.port, timeout=timeout)
    conn.putrequest(method, path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{page.port}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read() if path != "/events" else response.read(200)
    conn.close()
    return response.status, body


def _result(index: int, stage: int, flags: tuple[str, ...] = ()) -> EpochResult:
    p = np.full(4, 0.1)
    if stage >= 0:
        p[stage] = 0.7
    return EpochResult(index, index * 30.0, stage, max(stage, 0), p, flags)


def test_address_and_exposure() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:9") == ("::1", 9)
    for bad in ("x", "-1", "70000", "host:"):
        with pytest.raises(UsageError, match="--serve"):
            parse_address(bad)
    with pytest.raises(UsageError, match="--serve-public"):
        LivePage("0.0.0.0:0", 4)
    page = LivePage("127.0.0.1:0", 4)
    try:
        with pytest.raises(UsageError, match="cannot listen there"):
            LivePage(f"127.0.0.1:{page.port}", 4)
    finally:
        page.close()


def test_routes_read_only_host_checked_and_a_gap_is_a_gap() -> None:
    page = LivePage("127.0.0.1:0", 4)
    try:
        page.start({"device_id": "d", "channel": "ECG", "sfreq": 100.0, "delay": 0})
        for i in (0, 1, 2, 5):  # epochs 3 and 4 never came
            page.epoch(_result(i, 2 if i < 5 else 1))
        page.epoch(_result(6, -1, ("gap",)))
        status, body = _get(page, "/state.json")
        state = json.loads(body)
        assert status == 200 and [r[0] for r in state["rows"]] == [0, 1, 2, 5, 6]
        assert state["rows"][-1][1:3] == [-1, 1]  # unusable, flag bit 0 ("gap")
        assert state["stats"]["TIB"] == 3.5 and state["stats"]["TST"] == 2.0
        assert _get(page, "/")[0] == 200
        assert _get(page, "/state.json", host="evil.example:80")[0] == 403  # DNS rebinding
        assert _get(page, "/state.json", host=f"localhost:{page.port}")[0] == 200
        for method in ("POST", "PUT", "DELETE"):
            assert _get(page, "/", method=method)[0] == 501  # no route writes anything
        assert _get(page, "/nothing")[0] == 404
    finally:
        page.close()


def test_public_page_needs_its_token() -> None:
    page = LivePage("0.0.0.0:0", 4, public=True)
    try:
        assert page.token and page.url.endswith(f"?token={page.token}")
        host = f"0.0.0.0:{page.port}"
        assert _get(page, "/state.json", host=host)[0] == 403
        assert _get(page, "/state.json?token=wrong", host=host)[0] == 403
        assert _get(page, f"/state.json?token={page.token}", host=host)[0] == 200
        assert (
            _get(page, f"/state.json?token={page.token}", host=f"127.0.0.1:{page.port}")[0] == 403
        )
    finally:
        page.close()


def test_events_push_the_whole_night_then_each_epoch() -> None:
    page = LivePage("127.0.0.1:0", 4)
    page.start({"delay": 0})
    for i in range(3):
        page.epoch(_result(i, 2))
    conn = http.client.HTTPConnection("127.0.0.1", page.port, timeout=10)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/event-stream"

    def event() -> tuple[str, dict[str, Any]]:
        name = response.fp.readline().decode().split(": ", 1)[1].strip()
        data = json.loads(response.fp.readline().decode().split(": ", 1)[1])
        response.fp.readline()
        return name, data

    name, state = event()
    assert name == "state" and [r[0] for r in state["rows"]] == [0, 1, 2]
    page.epoch(_result(3, 1))
    name, update = event()
    assert name == "update" and [r[0] for r in update["rows"]] == [3]
    page.status_update({"gaps": 0, "last_packet_unix": 1.0})  # no push of its own:
    page.epoch(_result(4, 1))  # it comes with the next epoch's
    name, update = event()
    assert [r[0] for r in update["rows"]] == [4] and update["status"]["last_packet_unix"] == 1.0
    page.close()
    assert event()[1]["ended"] is True
    conn.close()


def test_a_whole_night_is_small() -> None:
    """1,440 epochs: the page and its first event under 200 KB (the browser test below
    times the load)."""
    page = LivePage("127.0.0.1:0", 5)
    try:
        page.start({"delay": 19, "device_id": "x" * 40})
        rng = np.random.default_rng(0)
        for i in range(1440):
            p = rng.dirichlet(np.ones(5))
            page.epoch(EpochResult(i, i * 30.0, int(p.argmax()), int(p.argmax()), p, ()))
        size = len(page.page) + len(json.dumps(page.state()[1], separators=(",", ":")))
        assert size < 200_000, size
    finally:
        page.close()


# --- the page in a real browser (Debian's chromium and chromium-driver; .ci/run installs them)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMEDRIVER) and shutil.which("chromium")):
        pytest.skip("needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a driver or browser
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,800"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(driver: Any, element: str, want: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = driver.find_element("id", element).text
        if got == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"#{element} shows {got!r}, not {want!r}")


class _Held:
    """A SYNTHETIC ECG night at full speed that stops at given epochs until released, and
    skips ``gap`` epochs of samples (a dropout) after the first stop."""

    def __init__(self, stops: list[int], gap: int) -> None:
        from edgesleep.synth.psg import generate_night

        self.signal = generate_night(0, 0).signals["ECG"]
        self.stops, self.gap = stops, gap
        self.release = threading.Event()
        self.held = threading.Event()
        self.stats: dict[str, float] = {"packets": 0}

    def info(self) -> StreamInfo:
        return StreamInfo(100.0, ("ECG",), None, "emulated", True)

    def packets(self) -> Iterator[Packet]:
        epoch, index = 0, 0
        for stop in self.stops:
            while epoch < stop:
                for _ in range(30):  # 1-s packets
                    self.stats["packets"] += 1
                    yield Packet(index, self.signal[index : index + 100, None])
                    index += 100
                epoch += 1
            self.held.set()
            self.release.wait(60)
            self.release.clear()
            self.held.clear()
            if stop == self.stops[0]:
                index += self.gap * 3000
                epoch += self.gap

    def close(self) -> None:
        pass


def test_live_page_in_a_browser(browser: Any, tmp_path: Path) -> None:
    """After N epochs of an emulated stream the page shows N epochs and the current stage,
    a reload shows them again, a dropout shows as a gap, and a whole night loads in 1 s."""
    from edgesleep.shipped import default_model
    from edgesleep.stream import StreamOptions, stream_to_csv

    model = default_model()
    page = LivePage("127.0.0.1:0", model.info.n_classes)
    source = _Held([20, 33], gap=3)
    out = tmp_path / "night.csv"
    stream = threading.Thread(target=stream_to_csv, args=(model, source, out, StreamOptions()),
                              kwargs={"sinks": [page]}, daemon=True)  # fmt: skip
    stream.start()
    assert source.held.wait(60)
    time.sleep(0.5)  # the last result of what was sent reaches the night file

    def night() -> tuple[list[list[str]], int, int]:
        rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
        unusable = sum(r[2] == "-1" for r in rows)
        return rows, len(rows) - unusable, unusable

    rows, scored, _ = night()
    assert scored >= 19  # of the 20 epochs sent (the heart model may wait for the next beat)
    browser.get(page.url)
    _wait(browser, "n-epochs", str(scored))
    _wait(browser, "current", rows[-1][3])  # the label of the last row of the night file
    assert "%" in browser.find_element("id", "confidence").text
    browser.refresh()
    _wait(browser, "n-epochs", str(scored))
    _wait(browser, "gap-epochs", "0")
    source.release.set()  # a 3-epoch dropout, then 10 epochs
    time.sleep(0.5)
    assert source.held.wait(60)
    time.sleep(0.5)
    rows, scored, unusable = night()
    assert unusable == 3 and scored >= 28
    _wait(browser, "n-epochs", str(scored))
    _wait(browser, "gap-epochs", "3")
    shot = os.environ.get("EDGESLEEP_LIVE_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    source.release.set()
    stream.join(30)
    _wait(browser, "ended", "the stream has ended")

    whole = LivePage("127.0.0.1:0", 5)  # a whole night, loaded fresh
    try:
        whole.start({"delay": 19})
        rng = np.random.default_rng(0)
        for i in range(1440):
            p = rng.dirichlet(np.ones(5))
            whole.epoch(EpochResult(i, i * 30.0, int(p.argmax()), int(p.argmax()), p, ()))
        browser.get(whole.url)
        _wait(browser, "n-epochs", "1440")
        drawn_ms = browser.execute_script("return window.edgesleepDrawnMs")
        assert drawn_ms is not None and drawn_ms < 1000, drawn_ms
    finally:
        whole.close()
