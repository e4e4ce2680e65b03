"""One-time sign-in links: the long-lived token never travels in a URL.

``genre-daemon status`` (or the server at start) mints a random code and prints
``http://host:port/signin/<code>``; the server exchanges the code, once and within
:data:`CODE_LIFETIME`, for the HttpOnly session cookie. The processes share nothing but the
state folder, so a code is a file ``state_dir/web-signin/<sha256(code)>`` (0600, in a 0700
folder) holding its issue time: only the hash is stored, and ``unlink`` consumes it, which
exactly one process can do, whatever the number of servers or requests racing for it. Expired
codes are swept whenever one is minted or used.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import time
from pathlib import Path

from genre_daemon.config import Settings
from genre_daemon.web.tokens import WebTokenError, read_endpoint, read_private, read_token, token_path

__all__ = [
    "CODE_LIFETIME", "SIGNIN_DIR", "SIGNIN_PATH", "MAX_OUTSTANDING", "mint_code", "consume_code", "signin_link",
    "web_status",
]

CODE_LIFETIME = 600  # seconds a printed link can be used
SIGNIN_DIR = "web-signin"
SIGNIN_PATH = "/signin/"
MAX_OUTSTANDING = 64  # codes kept at most; minting more drops the oldest
_CODE_BYTES = 16  # 128 bits: a 22-character code
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_FUTURE_SLACK = 60.0  # a code stamped later than now + this is not trusted (clock set back)


def _folder(state_dir: Path) -> Path:
    return Path(state_dir) / SIGNIN_DIR


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _issued(path: Path) -> float | None:
    """The issue time written in a code file that is ours, regular and private; None otherwise."""
    raw = read_private(path, 32)
    try:
        return None if raw is None else float(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _live(issued: float | None, now: float, lifetime: float) -> bool:
    return issued is not None and now - lifetime <= issued <= now + _FUTURE_SLACK


def sweep(state_dir: Path, *, now: float | None = None, lifetime: float = CODE_LIFETIME, keep: int = MAX_OUTSTANDING) -> int:
    """Remove expired, unreadable and left-over temporary code files, and the oldest beyond
    ``keep``; returns how many were removed."""
    now = time.time() if now is None else now
    folder = _folder(state_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    live: list[tuple[float, str]] = []
    dead: list[str] = []
    for name in names:
        if _HASH_RE.fullmatch(name):
            issued = _issued(folder / name)
            if _live(issued, now, lifetime):
                live.append((issued or 0.0, name))
                continue
        elif name.startswith(".") and _live(_mtime(folder / name), now, lifetime):
            continue  # a code being written now
        dead.append(name)
    live.sort()
    dead += [name for _, name in live[: max(0, len(live) - keep)]]
    removed = 0
    for name in dead:
        try:
            os.unlink(folder / name)
            removed += 1
        except OSError:
            pass
    return removed


def _mtime(path: Path) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def mint_code(state_dir: Path, *, now: float | None = None) -> str:
    """A fresh one-time code, recorded (by its hash only) under ``state_dir`` after sweeping the
    dead ones; WebTokenError naming the folder when it cannot be written. ``now``: the issue
    time written (tests mint old codes)."""
    sweep(state_dir, keep=MAX_OUTSTANDING - 1)  # by the clock, before this code joins them
    now = time.time() if now is None else now
    folder = _folder(state_dir)
    code = secrets.token_urlsafe(_CODE_BYTES)
    final = folder / _hash(code)
    tmp = folder / f".{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        folder.mkdir(mode=0o700, parents=False, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "w", encoding="ascii", closefd=True) as fh:
            fh.write(f"{now:.3f}\n")
        os.link(tmp, final)  # complete when visible; never replaces a code
    except OSError as exc:
        raise WebTokenError(f"{folder}: cannot record a sign-in code: {exc.strerror or exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return code


def consume_code(state_dir: Path, code: str, *, now: float | None = None, lifetime: float = CODE_LIFETIME) -> bool:
    """Use up ``code``: True exactly once, for the one caller (in any process) whose unlink
    removed its file while it was younger than ``lifetime``; False for an unknown, used or
    expired code (an expired one is removed too). WebTokenError when the code's folder cannot be
    changed (its permissions)."""
    now = time.time() if now is None else now
    if not _CODE_RE.fullmatch(code):
        return False
    path = _folder(state_dir) / _hash(code)
    issued = _issued(path)
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise WebTokenError(f"cannot use a sign-in code in {path.parent}: {exc.strerror}") from exc
        return False  # never there, or another request used it first
    sweep(state_dir, now=now, lifetime=lifetime)
    return _live(issued, now, lifetime)


def signin_link(url: str, state_dir: Path) -> str:
    """``url`` (the server's base, ending in ``/``) with a fresh one-time code."""
    return f"{url.rstrip('/')}{SIGNIN_PATH}{mint_code(state_dir)}"


def web_status(settings: Settings) -> tuple[str | None, dict[str, str | None]]:
    """The ``web:`` line of ``genre-daemon status`` (None when the page is off and nothing
    serves it) and its JSON fields ``web_url`` and ``web_signin`` (a fresh one-time link, or
    None with ``web_signin_error`` saying why). Never the token itself."""
    fields: dict[str, str | None] = {"web_url": None, "web_signin": None, "web_signin_error": None}
    endpoint = read_endpoint(settings.state_dir)
    if endpoint is None:
        if not settings.web.enabled:
            return None, fields
        fields["web_signin_error"] = "the page is not being served now"
        return (f"web: not serving now (web.enabled: the daemon serves http://{settings.web.listen}/ while it "
                "runs; `genre-daemon status` then prints a sign-in link)"), fields
    url = str(endpoint["url"])
    fields["web_url"] = url
    if read_token(settings.state_dir) is None:
        why = (f"its token {token_path(settings.state_dir)} is not readable by you; run `genre-daemon status` "
               "as the user the daemon runs as")
    else:
        try:
            fields["web_signin"] = signin_link(url, settings.state_dir)
        except WebTokenError as exc:
            why = str(exc)
        else:
            return (f"web: {fields['web_signin']} (one-time sign-in link, valid {CODE_LIFETIME // 60} minutes)",
                    fields)
    fields["web_signin_error"] = f"cannot make a sign-in link: {why}"
    return f"web: {url} (cannot make a sign-in link: {why})", fields
