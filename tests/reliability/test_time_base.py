"""The device's time base (issue 19, item 7, part): a host that opens the port late cuts
the device's epochs at the device's onsets, and opening the port keeps what the operating
system already buffered."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edgesleep import protocol
from edgesleep.emulate import PtyPort, to_counts
from edgesleep.ort import ExportedModel
from edgesleep.sources import Packet, SerialSource
from edgesleep.stager import Stager, score_signal
from edgesleep.stream import run_stream
from edgesleep.synth.psg import generate_night


def _frames(counts: np.ndarray, first_index: int, uv_per_lsb: float) -> bytes:
    header = protocol.encode_header(protocol.Header(100.0, ("EEG Fpz-Cz",), "int16", uv_per_lsb))
    step = 500  # 5-s frames: the reader's queue (256 packets) holds the whole test night
    data = [
        protocol.encode_data(first_index + i, counts[i : i + step])
        for i in range(0, len(counts), step)
    ]
    return header + b"".join(data) + protocol.encode_end(first_index + len(counts))


def test_a_late_host_cuts_the_devices_epochs(exported: dict, tmp_path: Path) -> None:
    model = ExportedModel(exported["root"] / "out", "fp32")
    stages = np.array(([0] * 4 + [2] * 6 + [4] * 4) * 3)
    night = generate_night(9, 0, stages=stages).signals["EEG Fpz-Cz"]
    counts, uv_per_lsb = to_counts(night[:, None])
    first = 40 * 3000 + 1234  # the device has been sending for 20.7 min
    port = PtyPort(tmp_path / "wearable")
    source = SerialSource(str(port.link), reconnect_s=0.05)
    assert source.connected.wait(10)
    writer = threading.Thread(target=lambda: port.write(_frames(counts, first, uv_per_lsb)))
    writer.start()
    info = source.info()
    results = []
    run_stream(source, Stager(model, info.sfreq, delay=0), results.append)
    writer.join()
    port.close()
    assert results[0].index == first // 3000 == 40 and "segment" in results[0].flags
    assert all(r.onset_s == 30.0 * r.index for r in results)
    assert [r.index for r in results] == list(range(40, 40 + len(results)))
    # the same samples from the device's epoch boundary (the first 1234 held at 0 µV)
    samples = counts[:, 0] * np.float64(np.float32(uv_per_lsb))
    offline = score_signal(model, np.concatenate([np.zeros(1234), samples]), 100.0, delay=0)
    np.testing.assert_allclose(
        [r.probabilities for r in results], [r.probabilities for r in offline], atol=1e-5
    )


def test_what_was_buffered_before_the_port_opened_is_kept(tmp_path: Path) -> None:
    counts = (np.arange(500) % 100 - 50).astype(np.int16)[:, None]
    port = PtyPort(tmp_path / "wearable")
    port.write(_frames(counts, 0, 0.5))  # sent before the host opens the port
    source = SerialSource(str(port.link), reconnect_s=0.05)
    for _ in range(200):  # the reader ends at the end frame (what pyserial's flush would lose)
        if not source.thread.is_alive():
            break
        time.sleep(0.05)
    source.close()
    port.close()
    packets = [source.queue.get_nowait() for _ in range(source.queue.qsize())]
    packets = [p for p in packets if isinstance(p, Packet)]
    assert packets and packets[0].start == 0
    assert sum(p.samples.shape[0] for p in packets) == 500
