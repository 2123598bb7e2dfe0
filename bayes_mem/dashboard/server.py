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
    """A dashboard option is unusable; the message names the value.

    Examples
    --------
    >>> try:
    ...     check_options("0.0.0.0", 5006, None, 5.0)  # every interface, no token
    ... except OptionError as exc:
    ...     print(str(exc)[:45])
    --host 0.0.0.0 is not a loopback address: a -
    """


@dataclass(frozen=True)
class Options:
    """The checked options (:func:`check_options`): bind address, TCP port, the token (None: no
    token; loopback only) and the pages' poll interval in seconds.

    Examples
    --------
    >>> Options()
    Options(host='127.0.0.1', port=5006, token=None, refresh=5.0)
    """

    host: str = "127.0.0.1"
    port: int = 5006
    token: str | None = None
    refresh: float = 5.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``.

    Examples
    --------
    >>> is_loopback("127.0.0.2"), is_loopback("::1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("example.org")
    (False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(host: str, port: int, token: str | None, refresh: float) -> Options:
    """The options, checked (see the module docstring); raises :class:`OptionError`.

    Examples
    --------
    Beyond this machine with a token; a refresh of 0.1 s is refused:

    >>> check_options("0.0.0.0", 8080, "s3cret-token-0123", 2)
    Options(host='0.0.0.0', port=8080, token='s3cret-token-0123', refresh=2.0)
    >>> try:
    ...     check_options("127.0.0.1", 5006, None, 0.1)
    ... except OptionError as exc:
    ...     print(exc)
    --refresh must be 0.2-3600 seconds, got 0.1
    """
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
    docstring); the login URL answers 403.

    Examples
    --------
    >>> auth = TokenAuth("s3cret-token-0123")
    >>> auth.login_url, auth.login_handler is DeniedHandler
    ('/denied', True)
    """

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        super().__init__()

    def check(self, handler: RequestHandler) -> bool:
        """Whether the request carries the token (query parameter ``token``, ``Authorization:
        Bearer`` header or the cookie); compared in constant time.

        Examples
        --------
        A stand-in request with only an ``Authorization`` header:

        >>> from types import SimpleNamespace
        >>> def request(header):
        ...     return SimpleNamespace(get_query_argument=lambda name, default=None: None,
        ...                            request=SimpleNamespace(headers={"Authorization": header}),
        ...                            get_cookie=lambda name: None)
        >>> auth = TokenAuth("s3cret-token-0123")
        >>> auth.check(request("Bearer s3cret-token-0123")), auth.check(request("Bearer guess"))
        (True, False)
        """
        given = _given_token(handler)
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    @property
    def get_user(self) -> Any:
        """Bokeh's user hook: ``"trader"`` for a request with the token (a token given in the URL is
        then kept in an HttpOnly cookie), None otherwise.

        Examples
        --------
        A stand-in request with the token in its URL gets the cookie:

        >>> from types import SimpleNamespace
        >>> cookies = {}
        >>> handler = SimpleNamespace(
        ...     get_query_argument=lambda name, default=None: "s3cret-token-0123",
        ...     request=SimpleNamespace(headers={}), get_cookie=lambda name: None,
        ...     set_cookie=lambda name, value, **options: cookies.update({name: options}))
        >>> TokenAuth("s3cret-token-0123").get_user(handler), cookies[COOKIE]["samesite"]
        ('trader', 'Strict')
        """

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
        """Where Bokeh sends a request without the token: ``/denied`` (403).

        Examples
        --------
        >>> TokenAuth("s3cret-token-0123").login_url
        '/denied'
        """
        return "/denied"

    @property
    def login_handler(self) -> type[RequestHandler]:
        """The handler of :attr:`login_url`: :class:`DeniedHandler`.

        Examples
        --------
        >>> TokenAuth("s3cret-token-0123").login_handler.__name__
        'DeniedHandler'
        """
        return DeniedHandler


class DeniedHandler(RequestHandler):
    """The login URL's handler: every request is refused with 403 and a one-line hint.

    Examples
    --------
    See :meth:`get`:

    >>> issubclass(DeniedHandler, RequestHandler)
    True
    """

    def get(self) -> None:
        """Answer 403 with the hint, as plain text.

        Examples
        --------
        A request on a throw-away tornado server:

        >>> import asyncio
        >>> from tornado.httpclient import AsyncHTTPClient
        >>> from tornado.httpserver import HTTPServer
        >>> from tornado.testing import bind_unused_port
        >>> from tornado.web import Application as WebApplication
        >>> async def fetch(path):
        ...     sock, port = bind_unused_port()
        ...     server = HTTPServer(WebApplication([(r"/denied", DeniedHandler)]))
        ...     server.add_sockets([sock])
        ...     url = f"http://127.0.0.1:{port}{path}"
        ...     response = await AsyncHTTPClient().fetch(url, raise_error=False)
        ...     server.stop()
        ...     return response.code, response.body.decode().strip()
        >>> asyncio.run(fetch("/denied"))
        (403, '403: this dashboard needs its token (open the URL it printed)')
        """
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("403: this dashboard needs its token (open the URL it printed)\n")


class ReportHandler(RequestHandler):
    """Serve ``MODELS/reports/vNNNNNN.html`` (token checked when there is one).

    Examples
    --------
    A registry's report served on a throw-away tornado server, no token:

    >>> import asyncio, tempfile
    >>> from tornado.httpclient import AsyncHTTPClient
    >>> from tornado.httpserver import HTTPServer
    >>> from tornado.testing import bind_unused_port
    >>> from tornado.web import Application as WebApplication
    >>> models = tempfile.TemporaryDirectory()
    >>> (Path(models.name) / "reports").mkdir()
    >>> _ = (Path(models.name) / "reports" / "v000012.html").write_text("<p>v12</p>")
    >>> async def fetch(path):
    ...     sock, port = bind_unused_port()
    ...     options = {"folder": Path(models.name), "auth": None}
    ...     routes = [(r"/reports/(v[0-9]{6}[.]html)", ReportHandler, options)]
    ...     server = HTTPServer(WebApplication(routes))
    ...     server.add_sockets([sock])
    ...     url = f"http://127.0.0.1:{port}{path}"
    ...     response = await AsyncHTTPClient().fetch(url, raise_error=False)
    ...     server.stop()
    ...     return response.code, response.headers["Content-Type"], response.body.decode()
    >>> asyncio.run(fetch("/reports/v000012.html"))
    (200, 'text/html; charset=utf-8', '<p>v12</p>')
    >>> models.cleanup()
    """

    def initialize(self, folder: Path | None, auth: TokenAuth | None) -> None:
        """Tornado's per-route setup: the model registry folder (None: no registry, every report is
        404) and the token check (None: no token).

        Examples
        --------
        A route whose registry is None answers 404 (see :meth:`get` for a served report):

        >>> import asyncio
        >>> from tornado.httpclient import AsyncHTTPClient
        >>> from tornado.httpserver import HTTPServer
        >>> from tornado.testing import bind_unused_port
        >>> from tornado.web import Application as WebApplication
        >>> async def fetch(path, folder, auth):
        ...     sock, port = bind_unused_port()
        ...     options = {"folder": folder, "auth": auth}
        ...     routes = [(r"/reports/(v[0-9]{6}[.]html)", ReportHandler, options)]
        ...     server = HTTPServer(WebApplication(routes))
        ...     server.add_sockets([sock])
        ...     url = f"http://127.0.0.1:{port}{path}"
        ...     response = await AsyncHTTPClient().fetch(url, raise_error=False)
        ...     server.stop()
        ...     return response.code
        >>> asyncio.run(fetch("/reports/v000001.html", None, None))
        404
        """
        self.folder, self.auth = folder, auth

    def get(self, name: str) -> None:
        """Serve report ``name`` (``vNNNNNN.html``): 403 without the token, 404 when it does not
        exist.

        Examples
        --------
        With a token, the report is served only to a request that carries it:

        >>> import asyncio, tempfile
        >>> from tornado.httpclient import AsyncHTTPClient
        >>> from tornado.httpserver import HTTPServer
        >>> from tornado.testing import bind_unused_port
        >>> from tornado.web import Application as WebApplication
        >>> models = tempfile.TemporaryDirectory()
        >>> (Path(models.name) / "reports").mkdir()
        >>> _ = (Path(models.name) / "reports" / "v000001.html").write_text("<p>report</p>")
        >>> async def fetch(path, folder, auth):
        ...     sock, port = bind_unused_port()
        ...     options = {"folder": folder, "auth": auth}
        ...     routes = [(r"/reports/(v[0-9]{6}[.]html)", ReportHandler, options)]
        ...     server = HTTPServer(WebApplication(routes))
        ...     server.add_sockets([sock])
        ...     url = f"http://127.0.0.1:{port}{path}"
        ...     response = await AsyncHTTPClient().fetch(url, raise_error=False)
        ...     server.stop()
        ...     return response.code, response.body.decode()
        >>> auth, folder = TokenAuth("s3cret-token-0123"), Path(models.name)
        >>> asyncio.run(fetch("/reports/v000001.html", folder, auth))[0]
        403
        >>> asyncio.run(fetch("/reports/v000001.html?token=s3cret-token-0123", folder, auth))
        (200, '<p>report</p>')
        >>> asyncio.run(fetch("/reports/v000002.html?token=s3cret-token-0123", folder, auth))[0]
        404
        >>> models.cleanup()
        """
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
    """The Bokeh server of every page on ``options.host:options.port`` (not started).

    Examples
    --------
    Every page of an empty store, on a free port (``port=0``), built but not started:

    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> Store(data_dir=tmp.name).close()  # an empty store file
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", tmp.name)
    >>> server = build_server(source, Options(port=0))
    >>> sorted(server._tornado.app_paths)
    ['/correlation', '/decisions', '/nightly', '/regime', '/risk', '/signals']
    >>> server.stop()
    >>> source.close()
    >>> tmp.cleanup()
    """
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
    symbols) and recomputed only when the store's risk or returns changed.

    Examples
    --------
    >>> import asyncio, tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> Store(data_dir=tmp.name).close()  # an empty store file
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", tmp.name)
    >>> server = build_server(source, Options(port=0))
    >>> warmer = start_warmer(server, source, refresh=5.0)  # ticks once the loop runs
    >>> warmer.is_running(), warmer.callback_time  # milliseconds
    (True, 5000.0)
    >>> async def until_warm():  # the first tick computes the table in a worker thread
    ...     for _ in range(200):
    ...         if any(key[0] == id(source.engine) for key in data._BACKTEST_CACHE):
    ...             return True
    ...         await asyncio.sleep(0.05)
    ...     return False
    >>> server.io_loop.run_sync(until_warm)
    True
    >>> warmer.stop()
    >>> server.stop()
    >>> source.close()
    >>> tmp.cleanup()
    """

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
    """Whether ``port`` on ``host`` can be bound now (nothing else listens there).

    Examples
    --------
    >>> import socket
    >>> with socket.socket() as busy:
    ...     busy.bind(("127.0.0.1", 0))
    ...     busy.listen()
    ...     port = busy.getsockname()[1]
    ...     print(port_free("127.0.0.1", port))
    False
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def url_of(options: Options, page: str = "risk") -> str:
    """The URL of ``page`` (the token in its query when there is one); an IPv6 host in brackets.

    Examples
    --------
    >>> url_of(Options(host="::1", port=8080, token="s3cret-token-0123"), "signals")
    'http://[::1]:8080/signals?token=s3cret-token-0123'
    """
    host = f"[{options.host}]" if ":" in options.host else options.host
    query = f"?token={options.token}" if options.token else ""
    return f"http://{host}:{options.port}/{page}{query}"


def serve(source: data.Source, options: Options) -> None:
    """Serve until interrupted (Ctrl-C); prints the URL of the first page.

    Examples
    --------
    Not served here (it blocks until Ctrl-C); a port already in use is refused before anything is
    bound:

    >>> import socket, tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> Store(data_dir=tmp.name).close()  # an empty store file
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", tmp.name)
    >>> with socket.socket() as busy:
    ...     busy.bind(("127.0.0.1", 0))
    ...     busy.listen()
    ...     port = busy.getsockname()[1]
    ...     try:
    ...         serve(source, Options(port=port))
    ...     except OptionError as exc:
    ...         print(str(exc).endswith("is in use or not bindable"))
    True
    >>> source.close()
    >>> tmp.cleanup()
    """
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
