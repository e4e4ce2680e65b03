"""The page's access token, its session cookie and the per-session CSRF token.

The token lives in ``state_dir/web-token`` (0600, made at start when missing): whoever can read
the daemon's state may use the page. API clients send it (``Authorization: Bearer``); a browser
never sees it: a one-time sign-in link (``signin.py``) gets it a session cookie
``<nonce>.<issued>.<HMAC(token, nonce, issued)>``, so sessions need no server-side store,
survive a restart, end after their maximum age, and all end when the token file is replaced.
Each session's CSRF token is ``HMAC(token, "csrf:" + nonce)``, embedded in the pages it is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import time
from pathlib import Path

from genre_daemon.errors import GenreDaemonError

__all__ = [
    "TOKEN_FILE", "ENDPOINT_FILE", "read_private", "WebTokenError", "ensure_token", "read_token", "token_path",
    "new_session", "session_nonce", "csrf_for", "same_token", "write_endpoint", "read_endpoint",
    "remove_endpoint",
]

TOKEN_FILE = "web-token"
ENDPOINT_FILE = "web.json"  # {"url", "pid"} of the server now listening, for `genre-daemon status`
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")
_NONCE_BYTES = 18


class WebTokenError(GenreDaemonError):
    """The token file cannot be made or read."""


def token_path(state_dir: Path) -> Path:
    """``state_dir/web-token``."""
    return Path(state_dir) / TOKEN_FILE


def read_private(path: Path, limit: int) -> bytes | None:
    """The first ``limit`` bytes of ``path`` if it is a regular file of ours, private (no
    group/other bits) and not a symlink; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)  # before wrapping it: open() refuses a directory's descriptor
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def read_token(state_dir: Path) -> str | None:
    """The token, if the file exists, is ours, private (no group/other bits) and well formed."""
    raw = read_private(token_path(state_dir), 256)
    if raw is None:
        return None
    text = raw.decode("ascii", "replace").strip()
    return text if _TOKEN_RE.fullmatch(text) else None


def ensure_token(state_dir: Path) -> str:
    """The token of ``state_dir``, made (0600, atomically) when missing, malformed, not ours or
    readable by others (then it may have been seen: a new one replaces it)."""
    existing = read_token(state_dir)
    if existing is not None:
        return existing
    path = token_path(state_dir)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "w", encoding="ascii", closefd=True) as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise WebTokenError(f"{path}: cannot write the web page's token: {exc.strerror or exc}") from exc
    return token


def same_token(given: str, token: str) -> bool:
    """Constant-time comparison of a presented token with the real one."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("ascii"))


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode("ascii"), message.encode("ascii"), hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    """A fresh session cookie value, ``<nonce>.<issued>.<mac>``: its issue time (whole seconds,
    ``now`` or the clock) is inside the MAC, so its age cannot be forged."""
    nonce = secrets.token_urlsafe(_NONCE_BYTES)
    issued = int(time.time() if now is None else now)
    return f"{nonce}.{issued}.{_mac(token, f'session:{nonce}.{issued}')}"


def session_nonce(cookie: str, token: str, *, max_age: float, now: float | None = None) -> str | None:
    """The nonce of a genuine session cookie issued at most ``max_age`` seconds ago (and not
    in the future), or None."""
    parts = cookie.split(".")
    if len(parts) != 3 or len(cookie) > 200:
        return None
    nonce, issued, mac = parts
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", nonce) or not re.fullmatch(r"[0-9]{1,12}", issued):
        return None
    if not hmac.compare_digest(mac, _mac(token, f"session:{nonce}.{issued}")):
        return None
    age = (time.time() if now is None else now) - int(issued)
    return nonce if -60 <= age <= max_age else None


def csrf_for(token: str, nonce: str) -> str:
    """The CSRF token of the session with ``nonce``."""
    return _mac(token, "csrf:" + nonce)


def write_endpoint(state_dir: Path, url: str) -> None:
    """Record where this process serves the page (read by ``genre-daemon status``)."""
    path = Path(state_dir) / ENDPOINT_FILE
    tmp = path.with_name(f".{ENDPOINT_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="utf-8", closefd=True) as fh:
        json.dump({"url": url, "pid": os.getpid()}, fh)
    os.replace(tmp, path)


def read_endpoint(state_dir: Path) -> dict[str, object] | None:
    """``{"url", "pid"}`` of a live server of this state_dir, or None."""
    try:
        data: dict[str, object] = dict(json.loads((Path(state_dir) / ENDPOINT_FILE).read_text(encoding="utf-8")))
        os.kill(int(str(data["pid"])), 0)
        if not isinstance(data.get("url"), str):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def remove_endpoint(state_dir: Path) -> None:
    """Forget the endpoint written by this process (another process's is left alone)."""
    path = Path(state_dir) / ENDPOINT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data.get("pid", -1)) == os.getpid():
            path.unlink()
    except (OSError, ValueError, TypeError):
        pass
