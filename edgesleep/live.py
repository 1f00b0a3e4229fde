"""``stream --serve [HOST:]PORT``: the night so far, live, on one self-contained page.

The server is the standard library's (:class:`http.server.ThreadingHTTPServer`): the device
is offline and small, the page is one file, and the push is server-sent events — one
long-lived GET per viewer that needs no library on either side (the browser's
``EventSource`` reconnects by itself). Routes, all GET, none writing anything: ``/`` (the
page, ``live.html``), ``/events`` (the push: first the whole night as one ``state`` event,
then one ``update`` per scored epoch with the stream's status piggy-backed on it) and
``/state.json`` (the whole night, for scripts). Any other method gets 501 from the
standard library.

Safety: the server binds 127.0.0.1 unless ``public`` is set (``--serve-public``): then it
logs a warning and every request needs the ``token`` (random unless given) in its query.
Every request's Host header must name the server (``localhost``/``127.0.0.1`` on loopback,
else the bound address), so a web page elsewhere cannot read the night through DNS
rebinding. At most ``MAX_VIEWERS`` viewers at once.

Cost: with no viewer the server thread sleeps in ``select`` (no periodic wake-up); a viewer
costs one write per epoch. The night kept for the page is bounded (``MAX_EPOCHS``, the
oldest go first).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edgesleep.errors import UsageError
from edgesleep.io.stats import sleep_statistics
from edgesleep.lsl import FLAGS, flag_bits
from edgesleep.stages import UNSCORED, class_labels

if TYPE_CHECKING:
    from edgesleep.stager import EpochResult

log = logging.getLogger("edgesleep")
MAX_EPOCHS = 20_160  # 7 days of 30-s epochs
MAX_VIEWERS = 8
KEEPALIVE_S = 60.0  # a comment line to an idle viewer, so that a vanished one is noticed


def parse_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (``[v6]:PORT``) -> (host, port); host 127.0.0.1 by default.

    Raises
    ------
    UsageError
        Not a port, or a port out of 1..65535.
    """
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise UsageError(f"--serve {text!r}: give PORT or HOST:PORT, e.g. 8080 or 0.0.0.0:8080")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LivePage:
    """The sink behind ``--serve`` (see the module docstring). It runs inline in the scoring
    loop (:class:`edgesleep.sinks.Inline`): an epoch costs a row and a notify. The night's
    statistics are computed for viewers, in a viewer's thread, once per change (none with no
    viewer); viewers' threads hold the lock only to copy rows, never while writing.

    Parameters
    ----------
    address : str
        ``PORT`` or ``HOST:PORT``.
    n_classes : int
    public : bool
        Allow an address other than loopback (a token is then required).
    token : str, optional
        The token for a public server (random when None).

    Raises
    ------
    UsageError
        A bad address, or one that is not loopback without ``public``.
        The port cannot be bound (in use, not permitted).
    """

    name = "live page"
    inline = True

    def __init__(self, address: str, n_classes: int, public: bool = False,
                 token: str | None = None) -> None:  # fmt: skip
        self.host, self.port = parse_address(address)
        if not is_loopback(self.host) and not public:
            raise UsageError(f"--serve {address}: the page is served on this machine only "
                             "(127.0.0.1) unless --serve-public says otherwise")  # fmt: skip
        self.public = not is_loopback(self.host)
        self.token = (token or secrets.token_urlsafe(16)) if self.public else None
        self.n_classes = n_classes
        self.page = resources.files("edgesleep").joinpath("live.html").read_bytes()
        self.cond = threading.Condition()
        self.rows: dict[int, list[Any]] = {}  # epoch -> [index, stage, flags, p...]
        self.seq = 0  # bumped at every change; viewers send what changed since theirs
        self.changed: dict[int, int] = {}  # epoch -> seq of its last change
        self.meta: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self._stats: tuple[int, dict[str, Any]] = (-1, {})  # (seq, statistics) cached
        self.viewers = 0
        self.closed = False
        try:
            self.server = _Server((self.host, self.port), _Handler)
        except OSError as err:
            raise UsageError(f"--serve {address}: cannot listen there ({err.strerror or err}); "
                             "choose another port") from None  # fmt: skip
        self.server.live = self
        self.port = self.server.server_address[1]  # a port of 0 picks a free one
        self.thread = threading.Thread(target=self.server.serve_forever, args=(3600.0,),
                                       name="edgesleep-live", daemon=True)  # fmt: skip
        self.thread.start()
        if self.public:
            log.warning("the live page is served on %s:%d to the network; anyone with its "
                        "token can read the night", self.host, self.port)  # fmt: skip

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    # the Sink protocol (called on the detached thread)
    def start(self, meta: dict[str, Any]) -> None:
        with self.cond:
            self.meta = {
                "device_id": meta.get("device_id", ""),
                "channel": meta.get("channel", ""),
                "sfreq": meta.get("sfreq"),
                "delay": meta.get("delay"),
                "export_id": meta.get("export_id", ""),
                "classes": list(class_labels(self.n_classes)),
                "flags": list(FLAGS),
                "started_unix": time.time(),
            }
            self._bump(-1)

    def epoch(self, result: EpochResult) -> None:
        row = [result.index, int(result.stage), flag_bits(result.flags),
               *(round(v, 3) if math.isfinite(v) else None
                 for v in result.probabilities.tolist())]  # fmt: skip
        with self.cond:
            self.rows[result.index] = row
            while len(self.rows) > MAX_EPOCHS:
                oldest = min(self.rows)
                del self.rows[oldest]
                self.changed.pop(oldest, None)
            self._bump(result.index)

    def status_update(self, status: dict[str, Any]) -> None:
        """The stream's counters: sent with the next epoch (one push per epoch)."""
        with self.cond:
            self.status = status

    def close(self) -> None:
        """Stop serving: viewers are told the stream ended, the port is released."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        stopper = threading.Thread(target=self.server.shutdown, daemon=True)
        stopper.start()
        try:  # wake the server's select, which sleeps without a timeout to speak of
            socket.create_connection((_connect_host(self.host), self.port), timeout=1).close()
        except OSError:
            pass
        stopper.join(5)
        self.server.server_close()

    def _bump(self, index: int) -> None:
        self.seq += 1
        if index >= 0:
            self.changed[index] = self.seq
        self.cond.notify_all()

    # what viewers get (called on the server's threads)
    def state(self) -> tuple[int, dict[str, Any]]:
        with self.cond:
            seq, rows = self.seq, dict(self.rows)
            out = {"meta": self.meta, "rows": [rows[i] for i in sorted(rows)],
                   "status": self.status, "ended": self.closed}  # fmt: skip
        out["stats"] = self._statistics(seq, rows)
        return seq, out

    def update_since(self, seq: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """Wait for a change after ``seq`` (up to ``timeout`` s): the new seq and what
        changed (None on a timeout)."""
        with self.cond:
            if self.seq == seq and not self.closed:
                self.cond.wait(timeout)
            if self.seq == seq and not self.closed:
                return seq, None
            new, rows_now = self.seq, dict(self.rows)
            rows = [rows_now[i] for i, s in sorted(self.changed.items()) if s > seq
                    and i in rows_now]  # fmt: skip
            out = {"rows": rows, "status": self.status, "ended": self.closed}
        out["stats"] = self._statistics(new, rows_now)
        return new, out

    def _statistics(self, seq: int, rows: dict[int, list[Any]]) -> dict[str, Any]:
        """The night's statistics as of ``seq`` (computed once per change, for all viewers)."""
        cached_seq, stats = self._stats
        if cached_seq != seq:
            stats = _statistics(rows, self.n_classes)
            self._stats = (seq, stats)
        return stats

    def allowed(self, host_header: str | None, query: str) -> str | None:
        """Why a request is refused (None: it is not)."""
        names = {f"{self.host}:{self.port}", f"[{self.host}]:{self.port}"}
        if not self.public:
            names |= {f"localhost:{self.port}", f"127.0.0.1:{self.port}", f"[::1]:{self.port}"}
        if (host_header or "").lower() not in names:
            return "unknown Host"
        if self.token is not None:
            given = parse_qs(query).get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "a token is needed"
        return None


def _statistics(rows: dict[int, list[Any]], n_classes: int) -> dict[str, Any]:
    """sleep_statistics of the night so far (epochs never scored count as unscored), NaN
    as null."""
    if not rows:
        return {}
    first, last = min(rows), max(rows)
    stages = np.full(last - first + 1, UNSCORED, dtype=np.int64)
    for i, row in rows.items():
        stages[i - first] = row[1]
    stats = sleep_statistics(stages, n_classes)
    return {k: (round(float(v), 1) if math.isfinite(v) else None) for k, v in stats.items()}


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    live: LivePage

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("live page: " + format, *args)

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self._common()
        self.end_headers()
        self.wfile.write(body)

    def _common(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src "
                         "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                         "img-src data:")  # fmt: skip

    def do_GET(self) -> None:  # noqa: N802 (the base's name)
        live = self.server.live
        url = urlsplit(self.path)
        refused = live.allowed(self.headers.get("Host"), url.query)
        if refused:
            self._send(403, f"forbidden: {refused}\n".encode(), "text/plain; charset=utf-8")
            return
        if url.path == "/":
            self._send(200, live.page, "text/html; charset=utf-8")
        elif url.path == "/state.json":
            body = json.dumps(live.state()[1], separators=(",", ":")).encode()
            self._send(200, body, "application/json")
        elif url.path == "/events":
            self._events(live)
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _events(self, live: LivePage) -> None:
        with live.cond:
            if live.viewers >= MAX_VIEWERS:
                busy = True
            else:
                busy, live.viewers = False, live.viewers + 1
        if busy:
            self._send(503, b"too many viewers\n", "text/plain; charset=utf-8")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self._common()
            self.end_headers()
            self.close_connection = True
            seq, state = live.state()
            self._event("state", state)
            while not state.get("ended"):
                seq, update = live.update_since(seq, KEEPALIVE_S)
                if update is None:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                state = update
                self._event("update", update)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away
        finally:
            with live.cond:
                live.viewers -= 1

    def _event(self, name: str, data: dict[str, Any]) -> None:
        body = json.dumps(data, separators=(",", ":"))
        self.wfile.write(f"event: {name}\ndata: {body}\n\n".encode())
        self.wfile.flush()
