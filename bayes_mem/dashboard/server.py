"""The dashboard's server: checked options, the token check and the Bokeh server.

Options (:func:`check_options`)
    ``host``: an IP address or a host name; default ``127.0.0.1``. Bound to anything but a
    loopback address (127.0.0.0/8, ::1, ``localhost``), a ``token`` is required: without one
    the dashboard refuses to start. ``port``: 1-65535. ``refresh``: seconds between an open
    page's polls, 0.2-3600. ``token``: at least 16 characters, printable ASCII without spaces.
    A bad value raises :class:`OptionError` naming it (the CLI exits 2) before anything is
    opened.

Token
    With a token, every page, its websocket and ``/reports/`` require it: as the ``token``
    query parameter (the printed URL carries it; a valid one is then kept in an HttpOnly,
    SameSite=Strict cookie so the page's websocket and links work), the cookie, or an
    ``Authorization: Bearer`` header. A request without it gets 403. BokehJS itself
    (``/static/``) is served to anyone: it holds no data. Bound to every interface
    (``0.0.0.0``, ``::``), a page's websocket is accepted from any origin name of the machine
    (the token still required); bound to one address, only from that address and port.

Warm-up
    The server keeps the risk page's backtest table computed ahead of visitors
    (:func:`start_warmer`): a page view after a new day does not wait for it.

Reports
    ``/reports/vNNNNNN.html`` serves the nightly reports from ``MODELS/reports`` (names of that
    form only).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.server.auth_provider import AuthProvider
from bokeh.server.server import Server
from tornado.ioloop import PeriodicCallback
from tornado.web import HTTPError, RequestHandler

from bayes_mem.dashboard import data, pages

log = logging.getLogger(__name__)

COOKIE = "bayes_mem_dashboard"
TOKEN_RE = re.compile(r"[\x21-\x7e]{16,200}")


class OptionError(ValueError):
    """A dashboard option is unusable; the message names the value."""


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 5006
    token: str | None = None
    refresh: float = 5.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(host: str, port: int, token: str | None, refresh: float) -> Options:
    """The options, checked (see the module docstring); raises :class:`OptionError`."""
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise OptionError(f"--host must be an address or host name, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise OptionError(f"--port must be an integer in 1-65535, got {port!r}")
    if not 0.2 <= refresh <= 3600:
        raise OptionError(f"--refresh must be 0.2-3600 seconds, got {refresh!r}")
    if token is not None and not TOKEN_RE.fullmatch(token):
        raise OptionError(
            "--token must be 16-200 printable ASCII characters without spaces "
            f"(got {len(token)} characters)"
        )
    if token is None and not is_loopback(host):
        raise OptionError(
            f"--host {host} is not a loopback address: a --token is required to serve the "
            "dashboard beyond this machine"
        )
    return Options(host, port, token, float(refresh))


def _given_token(handler: RequestHandler) -> str | None:
    query = handler.get_query_argument("token", default=None)
    if query:
        return query
    auth = handler.request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer ") :]
    return handler.get_cookie(COOKIE)


class TokenAuth(AuthProvider):
    """Bokeh's auth hook: a request is someone only with the right token (see the module
    docstring); the login URL answers 403."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        super().__init__()

    def check(self, handler: RequestHandler) -> bool:
        given = _given_token(handler)
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    @property
    def get_user(self) -> Any:
        def user(handler: RequestHandler) -> str | None:
            if not self.check(handler):
                return None
            if handler.get_query_argument("token", default=None):
                handler.set_cookie(COOKIE, self._token.decode(), httponly=True,
                                   samesite="Strict", path="/")  # fmt: skip
            return "trader"

        return user

    @property
    def login_url(self) -> str:
        return "/denied"

    @property
    def login_handler(self) -> type[RequestHandler]:
        return DeniedHandler


class DeniedHandler(RequestHandler):
    def get(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("403: this dashboard needs its token (open the URL it printed)\n")


class ReportHandler(RequestHandler):
    """Serve ``MODELS/reports/vNNNNNN.html`` (token checked when there is one)."""

    def initialize(self, folder: Path | None, auth: TokenAuth | None) -> None:
        self.folder, self.auth = folder, auth

    def get(self, name: str) -> None:
        if self.auth is not None and not self.auth.check(self):
            raise HTTPError(403)
        if self.folder is None:
            raise HTTPError(404)
        path = self.folder / "reports" / name
        if not path.is_file():
            raise HTTPError(404)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(path.read_bytes())


def _app(page: str, ctx: pages.Context) -> Application:
    return Application(FunctionHandler(lambda doc: pages.make_document(page, ctx, doc)))


def build_server(source: data.Source, options: Options, **server_kwargs: Any) -> Server:
    """The Bokeh server of every page on ``options.host:options.port`` (not started)."""
    ctx = pages.Context(source, options.refresh)
    auth = TokenAuth(options.token) if options.token else None
    shown = f"[{options.host}]" if ":" in options.host else options.host  # IPv6 literal
    origins = [f"{shown}:{options.port}"]
    if is_loopback(options.host):
        origins += [f"localhost:{options.port}", f"127.0.0.1:{options.port}"]
    elif options.host in ("0.0.0.0", "::"):  # every interface: browsers use any of its names;
        origins = ["*"]  # the token (a SameSite=Strict cookie) guards the websocket
    kwargs: dict[str, Any] = {
        "address": options.host, "port": options.port, "allow_websocket_origin": origins,
        "extra_patterns": [(r"/reports/(v\d{6}\.html)", ReportHandler,
                            {"folder": source.models, "auth": auth})],
        "num_procs": 1,
    }  # fmt: skip
    if auth is not None:
        kwargs["auth_provider"] = auth
    kwargs.update(server_kwargs)
    apps = {f"/{name}": _app(name, ctx) for name in pages.PAGES}
    return Server(apps, **kwargs)


def start_warmer(server: Server, source: data.Source, refresh: float) -> PeriodicCallback:
    """Keep the risk page's backtest table (:func:`~bayes_mem.dashboard.data.backtest_table`,
    the one costly aggregate) computed ahead of visitors: now and every ``refresh`` seconds, in
    a worker thread, it is looked up in the cache (a key check, about 20 ms on a year of 500
    symbols) and recomputed only when the store's risk or returns changed."""

    def work() -> None:
        try:
            data.backtest_table(source.engine)
        except Exception:  # a store briefly unreachable: the pages report it themselves
            log.warning("could not precompute the backtest table", exc_info=True)

    def tick() -> None:
        server.io_loop.run_in_executor(None, work)

    warmer = PeriodicCallback(tick, refresh * 1000)
    server.io_loop.add_callback(tick)
    warmer.start()
    return warmer


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def url_of(options: Options, page: str = "risk") -> str:
    host = f"[{options.host}]" if ":" in options.host else options.host
    query = f"?token={options.token}" if options.token else ""
    return f"http://{host}:{options.port}/{page}{query}"


def serve(source: data.Source, options: Options) -> None:
    """Serve until interrupted (Ctrl-C); prints the URL of the first page."""
    if not port_free(options.host, options.port):
        raise OptionError(f"--port {options.port} on {options.host} is in use or not bindable")
    server = build_server(source, options)
    server.start()
    start_warmer(server, source, options.refresh)
    print(f"bayes-mem dashboard: serving {source.shown} at {url_of(options)}", flush=True)
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        source.close()
