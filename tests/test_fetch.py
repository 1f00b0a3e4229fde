"""`data fetch` against a local HTTP server (no network): Range resume, checksums, 404."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import write_edf
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.errors import InputError
from edgesleep.io.dataset import load_night
from edgesleep.io.fetch import download, fetch_sleep_edf, parse_subjects


class _Handler(BaseHTTPRequestHandler):
    """Serves ``root``; honours ``Range: bytes=N-`` unless ``ranges`` is False."""

    root: Path
    ranges = True
    requests: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        rng = self.headers.get("Range")
        type(self).requests.append((self.path, rng))
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404, "Not Found")
            return
        body = path.read_bytes()
        start = 0
        if rng and self.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in_psg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 79500-s one-channel EDF (SC4001's length) at 1 Hz, written once."""
    x = np.random.default_rng(0).standard_normal(79500) * 20
    path = tmp_path_factory.mktemp("psg") / "psg.edf"
    return write_edf(path, {"EEG Fpz-Cz": (x, 1, "uV")}).read_bytes()


@pytest.fixture()
def server(
    tmp_path: Path, data_dir: Path, stand_in_psg: bytes
) -> Iterator[tuple[str, type[_Handler], Path]]:
    """A mirror of sleep-edfx/1.0.0 holding subject 0's two nights (tiny stand-in PSGs)."""
    root = tmp_path / "mirror"
    sc = root / "sleep-cassette"
    sc.mkdir(parents=True)
    for record, hyp in (("SC4001E0", "SC4001EC"), ("SC4002E0", "SC4002EC")):
        (sc / f"{record}-PSG.edf").write_bytes(stand_in_psg)
        (sc / f"{hyp}-Hypnogram.edf").write_bytes(
            (data_dir / "sleep-edf" / f"{hyp}-Hypnogram.edf").read_bytes()
        )
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()} sleep-cassette/{p.name}"
        for p in sorted(sc.iterdir())
    ]
    (root / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    handler = type("Handler", (_Handler,), {"root": root, "ranges": True, "requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler, root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_good_fetch_writes_the_layout(
    server: tuple[str, type[_Handler], Path], tmp_path: Path
) -> None:
    url, _, _ = server
    out = tmp_path / "sleep-edf"
    result = CliRunner().invoke(
        app, ["data", "fetch", "sleep-edf", "--out", str(out), "--subjects", "0", "--base-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "2 nights of 1 subjects" in result.output
    ds = fetch_sleep_edf(out, [0], url)  # second run: files present, nothing downloaded again
    assert [e.record for e in ds.entries] == ["SC4001E0", "SC4002E0"]
    assert not ds.synthetic
    assert ds.entries[0].lights_off_s == 30300.0  # 00:38 after a 16:13 start
    night = load_night(ds, ds.entries[0], "Fpz-Cz", crop="in-bed")
    assert (night.first_epoch, night.n_epochs) == (1010, 757)


def test_resume_uses_range(server: tuple[str, type[_Handler], Path], tmp_path: Path) -> None:
    url, handler, root = server
    src = root / "sleep-cassette" / "SC4001E0-PSG.edf"
    body = src.read_bytes()
    dest = tmp_path / "SC4001E0-PSG.edf"
    (tmp_path / "SC4001E0-PSG.edf.part").write_bytes(body[:1000])
    download(url + "sleep-cassette/SC4001E0-PSG.edf", dest, hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body
    assert handler.requests[-1][1] == "bytes=1000-"


def test_server_without_range_restarts(
    server: tuple[str, type[_Handler], Path], tmp_path: Path
) -> None:
    url, handler, root = server
    handler.ranges = False
    body = (root / "sleep-cassette" / "SC4001E0-PSG.edf").read_bytes()
    dest = tmp_path / "psg.edf"
    (tmp_path / "psg.edf.part").write_bytes(body[:1000])
    download(url + "sleep-cassette/SC4001E0-PSG.edf", dest, hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body


def test_checksum_mismatch_removes_the_file(
    server: tuple[str, type[_Handler], Path], tmp_path: Path
) -> None:
    url, _, _ = server
    dest = tmp_path / "psg.edf"
    with pytest.raises(InputError, match="checksum mismatch"):
        download(url + "sleep-cassette/SC4001E0-PSG.edf", dest, "0" * 64)
    assert not dest.exists() and not (tmp_path / "psg.edf.part").exists()


def test_tampered_hypnogram_in_the_published_sums(
    server: tuple[str, type[_Handler], Path], tmp_path: Path
) -> None:
    url, _, root = server
    sums = root / "SHA256SUMS.txt"
    sums.write_text(
        sums.read_text().replace(
            hashlib.sha256(
                (root / "sleep-cassette" / "SC4001EC-Hypnogram.edf").read_bytes()
            ).hexdigest(),
            "f" * 64,
        )
    )
    with pytest.raises(InputError, match="disagrees with the hash pinned"):
        fetch_sleep_edf(tmp_path / "out", [0], url)


def test_404_is_a_clear_error(server: tuple[str, type[_Handler], Path], tmp_path: Path) -> None:
    url, _, _ = server
    with pytest.raises(InputError, match="HTTP 404 .* for http://127.0.0.1"):
        download(url + "sleep-cassette/missing.edf", tmp_path / "m.edf", "0" * 64)
    result = CliRunner().invoke(
        app, ["data", "fetch", "--out", str(tmp_path / "o"), "--subjects", "1", "--base-url", url]
    )
    assert result.exit_code == 1 and "lists no sleep-cassette/SC4011E0-PSG.edf" in result.output


def test_subject_ranges() -> None:
    assert parse_subjects("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(InputError, match="not in SC-20"):
        parse_subjects("0-25")
