"""`data fetch` reads bounded listings and stays on the host it was given (issue 29, item 9):
an endless SHA256SUMS is refused at the cap; a redirect to another host (127.0.0.1 to
127.0.0.2) is refused, one on the same host followed."""

from __future__ import annotations

from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import http_server

from edgesleep.errors import InputError
from edgesleep.io import fetch

SUMS = b"".join(b"%064x heart_rate/%d_heartrate.txt\n" % (i, i) for i in range(3))


class _Handler(BaseHTTPRequestHandler):
    redirect_to = ""  # a base URL to send every request to, or "" to serve

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path.lstrip("/"))
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        if self.path.endswith("endless/SHA256SUMS.txt"):
            try:
                while True:  # a listing that never ends
                    self.wfile.write(b"0" * 64 + b" x\n" * 1000)
            except (BrokenPipeError, ConnectionResetError):
                return
        self.wfile.write(SUMS)

    def log_message(self, *args: object) -> None:
        pass


def _server(host: str, redirect_to: str = "") -> AbstractContextManager[str]:
    return http_server(type("H", (_Handler,), {"redirect_to": redirect_to}), host)


def test_an_endless_listing_is_refused_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "MAX_LISTING_BYTES", 2**20)
    with _server("127.0.0.1") as url, pytest.raises(InputError, match="longer than 1 MB"):
        fetch.fetch_checksums(url + "endless/")


def test_a_redirect_to_another_host_is_refused() -> None:
    with _server("127.0.0.2") as other, _server("127.0.0.1", redirect_to=other) as url:
        with pytest.raises(InputError, match="redirects to another host .http://127.0.0.2"):
            fetch.fetch_checksums(url)
    with _server("127.0.0.1") as target:
        with _server("127.0.0.1", redirect_to=target) as url:  # the same host, another port
            with pytest.raises(InputError, match="redirects to another host"):
                fetch.fetch_checksums(url)
        assert len(fetch.fetch_checksums(target)) == 3


def test_a_redirect_on_the_same_host_and_port_is_followed() -> None:
    class Moved(_Handler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/old/"):
                self.send_response(301)
                self.send_header("Location", "/new/" + self.path[len("/old/") :])
                self.end_headers()
                return
            super().do_GET()

    with http_server(Moved) as url:
        assert len(fetch.fetch_checksums(url + "old/")) == 3
