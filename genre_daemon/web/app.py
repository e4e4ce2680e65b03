"""The Starlette application: pages, the JSON API, and the guard in front of both.

The guard (an ASGI middleware, so it sees every request before routing) refuses, in order:
a ``Host`` that is not a loopback name when the server listens on loopback (DNS rebinding);
any request a browser made for another origin: ``Sec-Fetch-Site`` ``cross-site`` or
``same-site`` (a page on another port of 127.0.0.1 is same-site, and the SameSite cookie goes
with its requests), or an ``Origin`` that is not this server: 403; a request without the token
(``Authorization: Bearer``) or a live session cookie: 401 (the token is never taken from a URL;
a browser signs in with a one-time ``/signin/<code>`` link, which sets the cookie and redirects
to the page); a state-changing request whose
``Sec-Fetch-Site`` is not ``same-origin``: 403. Requests without Fetch Metadata (API clients,
curl) pass on their token. State changes are POST only; with the cookie they also need the
session's CSRF token (``X-CSRF-Token`` header, or the ``csrf`` field of a form). URLs carry ids
only: anything else, ``..`` and encoded forms included, matches no route and gets 404. Errors are
``{"error": reason}`` everywhere but on the four HTML pages, which answer in plain text.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genre_daemon.web.data import SORTS, WebData, WebError
from genre_daemon.web.items import check_sort
from genre_daemon.web.placing import shown
from genre_daemon.web.signin import SIGNIN_PATH, consume_code
from genre_daemon.web.templates import APP_CSS, APP_JS, render
from genre_daemon.web.tokens import WebTokenError, csrf_for, new_session, same_token, session_nonce

log = logging.getLogger("genre_daemon.web")

__all__ = ["create_app", "COOKIE", "PAGE_SIZE"]

COOKIE = "genre_daemon_session"
COOKIE_MAX_AGE = 7 * 24 * 3600  # a session ends after a week: sign in again with a new link
PAGE_SIZE = 50
COVER_MAX_AGE = 3600  # seconds a browser keeps a cover without asking (then the ETag answers 304)
MAX_BODY = 16 * 1024
_MAX_ID = (1 << 63) - 1
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_AUDIO_TYPES = {
    "mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
    "m4a": "audio/mp4", "au": "audio/basic", "aiff": "audio/aiff", "aif": "audio/aiff",
}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
# Sec-Fetch-Site values of requests this origin made itself, or the user did (typed, bookmarked);
# no header at all is an API client (or a browser too old to send Fetch Metadata).
_OWN_SITES = frozenset({"same-origin", "none"})
_PAGES = frozenset({"/", "/recent", "/status", "/models"})  # HTML: their errors are plain text


# --- the guard --------------------------------------------------------------------------------------


class Guard:
    """Authentication, Host and cross-origin checks, and security headers, for every request."""

    def __init__(self, app: ASGIApp, token: str, *, loopback: bool, state_dir: Path) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback
        self.state_dir = state_dir  # where the one-time sign-in codes are

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        send = _with_security_headers(send)
        host = headers.get("host", "")
        if self.loopback and not _loopback_host(host):
            await _refuse(421, f"this page answers only to a loopback host name, not {host[:100]!r}", scope, receive, send)
            return
        method = scope["method"]
        foreign = _foreign(headers, f"{scope.get('scheme', 'http')}://{host}", state_change=method not in _SAFE_METHODS)
        if foreign is not None:
            await _refuse(403, foreign, scope, receive, send)
            return
        if scope.get("path", "").startswith(SIGNIN_PATH):
            await self._signin(scope, receive, send)
            return
        via, nonce = self._authenticate(headers)
        if via is None:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            why = ("the token is never taken from a URL" if any(k == "token" for k, _ in query)
                   else "this page needs its token")
            await _refuse(401, f"{why}: open the one-time sign-in link `genre-daemon status` prints "
                               "(or send Authorization: Bearer <state_dir/web-token>)", scope, receive, send,
                          extra={"WWW-Authenticate": 'Bearer realm="genre-daemon"'})
            return
        scope.setdefault("state", {})["auth"] = {"via": via, "nonce": nonce}
        await self.app(scope, receive, send)

    def _authenticate(self, headers: Headers) -> tuple[str | None, str | None]:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return ("bearer", None) if same_token(auth[7:].strip(), self.token) else (None, None)
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        if cookie:
            nonce = session_nonce(cookie, self.token, max_age=COOKIE_MAX_AGE)
            if nonce is not None:
                return "cookie", nonce
        return None, None

    async def _signin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /signin/<code>``: use the one-time code up (once, in any process) and answer
        with the session cookie and a redirect to the page; 401 for a used, expired or unknown
        code. Other methods consume nothing (a HEAD from a link preview leaves the code)."""
        if scope["method"] != "GET":
            await _refuse(405, "open the sign-in link in the browser", scope, receive, send, extra={"Allow": "GET"})
            return
        code = scope["path"][len(SIGNIN_PATH):]
        try:
            used = await run_in_threadpool(consume_code, self.state_dir, code)
        except WebTokenError as exc:
            log.warning("web: %s", exc)
            await _refuse(500, f"{exc} (see the daemon's log)", scope, receive, send)
            return
        if not used:
            await _refuse(401, "this sign-in link was already used, has expired or is unknown: run "
                               "`genre-daemon status` for a new one", scope, receive, send)
            return
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, new_session(self.token), max_age=COOKIE_MAX_AGE, path="/", httponly=True,
                            samesite="strict", secure=scope.get("scheme") == "https")
        await response(scope, receive, send)


def _foreign(headers: Headers, own: str, *, state_change: bool) -> str | None:
    """Why a request came from another origin than ``own`` (then it is refused), or None.

    Browsers say where a request comes from in ``Sec-Fetch-Site``: ``same-site`` includes a page
    on another port of the same host, which gets the SameSite cookie too, so only ``same-origin``
    and ``none`` (a typed URL, a bookmark) pass; a state change must be ``same-origin``. An
    ``Origin`` header, when sent, must be this server. Without either header (API clients with
    Bearer, curl) the token alone decides."""
    origin = headers.get("origin")
    if origin is not None and origin != own:
        return f"cross-origin request from {origin[:100]!r} refused"
    site = headers.get("sec-fetch-site")
    if site is not None and (site not in _OWN_SITES or (state_change and site != "same-origin")):
        return f"request from another site ({site[:40]}) refused: this page serves only its own origin"
    return None


def _json_errors(path: str) -> bool:
    """Errors are JSON on every path but the four HTML pages and the sign-in link (docs/web.md)."""
    return path not in _PAGES and not path.startswith(SIGNIN_PATH)


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name in _LOOPBACK_NAMES:
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            h = MutableHeaders(scope=message)
            h.setdefault("content-security-policy", _CSP)
            h.setdefault("x-content-type-options", "nosniff")
            h.setdefault("referrer-policy", "no-referrer")
            h.setdefault("x-frame-options", "DENY")
            h.setdefault("cache-control", "no-store")
        await send(message)

    return wrapped


async def _refuse(status: int, message: str, scope: Scope, receive: Receive, send: Send,
                  extra: dict[str, str] | None = None) -> None:
    if _json_errors(scope.get("path", "")):
        response: Response = JSONResponse({"error": message}, status_code=status, headers=extra)
    else:
        response = PlainTextResponse(f"{status}: {message}\n", status_code=status, headers=extra)
    await response(scope, receive, send)


# --- responses --------------------------------------------------------------------------------------


class _OpenedFileResponse(FileResponse):
    """A FileResponse of a file opened with ``O_NOFOLLOW`` before the response is built: what is
    streamed is that inode (read through ``/proc/self/fd``), whatever replaces the name meanwhile."""

    def __init__(self, fd: int, st: os.stat_result, media_type: str) -> None:
        self._fd = fd
        super().__init__(f"/proc/self/fd/{fd}", stat_result=st, media_type=media_type,
                         headers={"cache-control": "private, no-store"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            os.close(self._fd)


def _error(exc: WebError, request: Request, form: bool = False) -> Response:
    if form:
        return HTMLResponse(render("error", title="not done", page="", csrf=_csrf(request), status=exc.status,
                                   message=exc.message, back=_back(request)), status_code=exc.status)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def _back(request: Request) -> str:
    path = request.url.path
    return "/recent" if path.startswith("/api/moves/") else "/models" if path.startswith("/api/models") else "/"


def _csrf(request: Request) -> str:
    auth = request.scope.get("state", {}).get("auth") or {}
    nonce = auth.get("nonce")
    return csrf_for(request.app.state.token, nonce) if nonce else ""


def _id(request: Request, key: str) -> int:
    value = request.path_params[key]
    if not isinstance(value, int) or value < 0 or value > _MAX_ID:
        raise WebError(404, "no such id")
    return value


async def _body(request: Request) -> tuple[dict[str, Any], bool]:
    """The POST body (JSON object or urlencoded form) and whether it was a form; checks the
    session's CSRF token when the request came with the cookie."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise WebError(413, f"request body larger than {MAX_BODY} bytes")
    form = kind == "application/x-www-form-urlencoded"
    if form:
        data: Any = _form_fields(raw)
    elif kind == "application/json":
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise WebError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise WebError(400, 'the body must be a JSON object, e.g. {"genre": "jazz"}')
    else:
        raise WebError(415, "send JSON (Content-Type: application/json)")
    auth = request.scope.get("state", {}).get("auth") or {}
    if auth.get("via") == "cookie":
        given = request.headers.get("x-csrf-token") or (data.get("csrf") if form else None) or ""
        if not hmac.compare_digest(str(given).encode(), _csrf(request).encode()):
            raise WebError(403, "missing or wrong CSRF token: reload the page")
    return data, form


def _form_fields(raw: bytes) -> dict[str, str]:
    """An urlencoded body as a dict; WebError 400 naming the field when a byte or escape
    (``genre=%ff``) is not UTF-8: replaced by U+FFFD it would become a folder's name."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
    except UnicodeDecodeError:
        raise WebError(400, "the form is not valid UTF-8; nothing moved") from None
    for key, value in pairs:
        if any("\udc80" <= ch <= "\udcff" for ch in key + value):
            raise WebError(400, f"the form field {shown(key)} is not valid UTF-8; nothing moved")
    return dict(pairs)


Action = Callable[[WebData, Request, dict[str, Any]], Any]


def _action(run: Action, after: str) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint: parse and check the body, run ``run`` in a worker thread, answer JSON
    (or, for a plain form, redirect to ``after`` / show the error page)."""

    async def endpoint(request: Request) -> Response:
        form = False
        try:
            body, form = await _body(request)
            result = await run_in_threadpool(run, request.app.state.data, request, body)
        except WebError as exc:
            return _error(exc, request, form)
        if form:
            return RedirectResponse(after, status_code=303)
        return JSONResponse(result)

    return endpoint


# --- endpoints ---------------------------------------------------------------------------------------


def review_page(request: Request) -> Response:
    """The review page: ``?page=`` (50 items each), ``?sort=`` and ``?genre=`` as the API takes them."""
    data: WebData = request.app.state.data
    try:
        sort, genre = _sort_and_genre(request)
        try:
            asked = int(request.query_params.get("page", "1"))
        except ValueError:
            asked = 1
        view, page_no, pages = data.review_page(sort, genre, asked, PAGE_SIZE)
    except WebError as exc:
        return PlainTextResponse(f"{exc.status}: {exc.message}\n", status_code=exc.status)
    return HTMLResponse(render("review", title="Review", page="review", csrf=_csrf(request), items=view.items,
                               total=view.total, pages=pages, page_no=page_no, genres=data.known_genres(),
                               named=data.named, min_confidence=view.min_confidence, view=view,
                               sort=view.sort, sorts=SORTS, filter_genre=view.genre, genre_counts=view.genres))


def recent_page(request: Request) -> Response:
    data: WebData = request.app.state.data
    return HTMLResponse(render("recent", title="Recent", page="recent", csrf=_csrf(request),
                               items=data.recent(_limit(request, 50)), genres=data.known_genres()))


def status_page(request: Request) -> Response:
    s = _status(request.app.state.data)
    return HTMLResponse(render("status", title="Status", page="status", csrf=_csrf(request), s=s,
                               daemon=s["daemon"], retrain_text=s["retrain_text"], gate_text=s["gate_text"]))


def models_page(request: Request) -> Response:
    data: WebData = request.app.state.data
    return HTMLResponse(render("models", title="Models", page="models", csrf=_csrf(request), m=data.models()))


def api_review(request: Request) -> Response:
    """The review list (``?sort=``, ``?genre=``, ``?offset=``, ``?limit=``: all by default), the
    count after the filter in ``X-Total-Count``."""
    try:
        sort, genre = _sort_and_genre(request)
        limit = _int_param(request, "limit", -1) if "limit" in request.query_params else -1  # -1: all
        view = request.app.state.data.review_view(sort, genre, _int_param(request, "offset", 0),
                                                  None if limit < 0 else limit)
    except WebError as exc:
        return _error(exc, request)
    return JSONResponse([it.to_json() for it in view.items], headers={"x-total-count": str(view.total)})


def api_review_summary(request: Request) -> Response:
    """What the page shows around the review list: counts, genres in review, sort, threshold."""
    try:
        sort, genre = _sort_and_genre(request)
        view = request.app.state.data.review_view(sort, genre, 0, 0, media=False)
    except WebError as exc:
        return _error(exc, request)
    return JSONResponse(view.to_json())


def _sort_and_genre(request: Request) -> tuple[str, str | None]:
    """The ``sort`` (checked: WebError 400) and ``genre`` query parameters."""
    return check_sort(request.query_params.get("sort")), request.query_params.get("genre") or None


def api_recent(request: Request) -> Response:
    return JSONResponse([it.to_json() for it in request.app.state.data.recent(_limit(request, 50))])


def api_status(request: Request) -> Response:
    return JSONResponse(_status(request.app.state.data))


def api_models(request: Request) -> Response:
    return JSONResponse(request.app.state.data.models())


def audio(request: Request) -> Response:
    data: WebData = request.app.state.data
    try:
        path, st = data.audio_path(_id(request, "file_id"))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except WebError as exc:
        return _error(exc, request)
    except OSError:
        return _error(WebError(404, "the file cannot be opened"), request)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        return _error(WebError(404, "the file changed while it was being opened"), request)
    ext = path.name.rpartition(".")[2].lower()
    return _OpenedFileResponse(fd, opened, _AUDIO_TYPES.get(ext, "application/octet-stream"))


def cover(request: Request) -> Response:
    """The cover of a song's album (its folder's picture, else the embedded one); 304 when the
    browser has it already."""
    data: WebData = request.app.state.data
    try:
        found = data.cover(_id(request, "file_id"))
    except WebError as exc:
        return _error(exc, request)
    headers = {"cache-control": f"private, max-age={COVER_MAX_AGE}", "etag": found.etag,
               "last-modified": formatdate(found.mtime, usegmt=True)}
    if found.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(found.data, media_type=found.media_type, headers=headers)


def confusion(request: Request) -> Response:
    try:
        png = request.app.state.data.confusion_png(request.path_params["name"])
    except WebError as exc:
        return _error(exc, request)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=60"})


def app_js(request: Request) -> Response:
    return Response(APP_JS, media_type="text/javascript", headers={"cache-control": "private, max-age=300"})


def app_css(request: Request) -> Response:
    return Response(APP_CSS, media_type="text/css", headers={"cache-control": "private, max-age=300"})


def _do_review(data: WebData, request: Request, body: dict[str, Any]) -> Any:
    return data.file_review(_id(request, "file_id"), body.get("genre"))


def _do_correct(data: WebData, request: Request, body: dict[str, Any]) -> Any:
    return data.correct(_id(request, "move_id"), body.get("genre"))


def _do_undo(data: WebData, request: Request, body: dict[str, Any]) -> Any:
    return data.undo(_id(request, "move_id"))


def _do_rollback(data: WebData, request: Request, body: dict[str, Any]) -> Any:
    return data.rollback()


def _status(data: WebData) -> dict[str, Any]:
    """:meth:`WebData.status` plus the one-line texts the status page shows."""
    s = data.status()
    if s["running"]:
        s["daemon"] = f"running, pid {s['pid']}, up {_duration(s['uptime'] or 0)}"
    else:
        s["daemon"] = "not running (this page serves the journal as it is)"
    r = s.get("retrain") or {}
    if r.get("state") == "running":
        done = f" {r['done']}/{r['total']}" if "done" in r and "total" in r else ""
        s["retrain_text"] = f"running: {r.get('step', '')}{done}"
    elif r:
        s["retrain_text"] = f"{r.get('state')}" + (f" at {_when(r['finished'])}" if r.get("finished") else "")
    else:
        s["retrain_text"] = "never ran"
    g = s.get("last_gate")
    if g:
        nums = ""
        cand, act = g.get("candidate") or {}, g.get("active") or {}
        if cand or act:
            nums = (f" [held-out labels: candidate {_fmt(cand.get('labels'))}, active {_fmt(act.get('labels'))}; "
                    f"old genres: candidate {_fmt(cand.get('old_genres'))}, active {_fmt(act.get('old_genres'))}]")
        s["gate_text"] = f"{'promoted' if g.get('promoted') else 'not promoted'}: {g.get('reason', '')}{nums}"
    else:
        s["gate_text"] = "none yet"
    return s


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def _when(t: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(t)))
    except (TypeError, ValueError, OverflowError):
        return "?"


def _duration(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 3600}h {s % 3600 // 60}m {s % 60}s" if s >= 3600 else f"{s // 60}m {s % 60}s"


def _int_param(request: Request, key: str, default: int) -> int:
    try:
        return max(0, int(request.query_params.get(key, default)))
    except ValueError:
        return default


def _limit(request: Request, default: int) -> int:
    return max(1, min(_int_param(request, "limit", default), 1000))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    reason = "not found" if status == 404 else ("method not allowed" if status == 405 else "refused")
    if _json_errors(request.url.path):
        return JSONResponse({"error": reason}, status_code=status)
    return PlainTextResponse(f"{status}: {reason}\n", status_code=status)


def create_app(data: WebData, token: str, *, loopback: bool = True) -> ASGIApp:
    """The page's ASGI application over ``data``, guarded by ``token``."""
    routes = [
        Route("/", review_page, methods=["GET"]),
        Route("/recent", recent_page, methods=["GET"]),
        Route("/status", status_page, methods=["GET"]),
        Route("/models", models_page, methods=["GET"]),
        Route("/assets/app.js", app_js, methods=["GET"]),
        Route("/assets/app.css", app_css, methods=["GET"]),
        Route("/api/review", api_review, methods=["GET"]),
        Route("/api/review/{file_id:int}", _action(_do_review, "/"), methods=["POST"]),
        Route("/api/review/summary", api_review_summary, methods=["GET"]),
        Route("/api/files/{file_id:int}/audio", audio, methods=["GET"]),
        Route("/api/files/{file_id:int}/cover", cover, methods=["GET"]),
        Route("/api/status", api_status, methods=["GET"]),
        Route("/api/recent", api_recent, methods=["GET"]),
        Route("/api/moves/{move_id:int}/genre", _action(_do_correct, "/recent"), methods=["POST"]),
        Route("/api/moves/{move_id:int}/undo", _action(_do_undo, "/recent"), methods=["POST"]),
        Route("/api/models", api_models, methods=["GET"]),
        Route("/api/models/rollback", _action(_do_rollback, "/models"), methods=["POST"]),
        Route("/models/{name:str}/confusion.png", confusion, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.data = data
    app.state.token = token
    return Guard(app, token, loopback=loopback, state_dir=data.settings.state_dir)
