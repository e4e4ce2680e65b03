"""The settings records: what a config file resolves to, with the pinned defaults.

Frozen dataclasses (:class:`Settings` and its sections :class:`RetrainSettings`,
:class:`WebSettings`, :class:`NotifySettings`), the default folders as a user would write them, where the config file is
looked for, and the ``host:port`` rules of ``web.listen`` (needed by the record itself and by
the validation). The field names are the config keys (``TOP_KEYS``, ``RETRAIN_KEYS``,
``WEB_KEYS``, ``NOTIFY_KEYS`` are read from them). Reads no file.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, get_args

OnConflict = Literal["rename", "skip", "overwrite"]
ON_CONFLICT_CHOICES: tuple[str, ...] = get_args(OnConflict)
DEFAULT_EXTENSIONS = ("mp3", "wav", "au", "flac", "ogg", "m4a", "opus", "aiff", "aif")
CONFIG_ENV = "GENRE_DAEMON_CONFIG"
JOURNAL_NAME = "journal.sqlite3"

# The pinned defaults of the folder keys, as a user would write them (DESIGN.md, "Config").
DEFAULT_FOLDERS: dict[str, str] = {
    "inbox": "~/Music/Inbox",
    "library": "~/Music/Library",
    "review_dir": "~/Music/Library/_review",
    "quarantine_dir": "~/Music/Inbox/.quarantine",
    "state_dir": "~/.local/share/genre-daemon",
}


@dataclass(frozen=True)
class RetrainSettings:
    """When and from what the model is retrained (the ``retrain:`` section)."""

    enabled: bool = True
    min_new_labels: int = 20
    min_interval: float = 3600.0  # seconds
    min_per_genre: int = 10
    labelled_dirs: tuple[Path, ...] = ()


DEFAULT_WEB_LISTEN = "127.0.0.1:8765"


@dataclass(frozen=True)
class WebSettings:
    """The review page (the ``web:`` section): served by the daemon itself when enabled."""

    enabled: bool = False
    listen: str = DEFAULT_WEB_LISTEN  # "host:port", host an IP address or localhost; port 0: any free one
    allow_remote: bool = False  # a listen address that is not loopback must be asked for

    @property
    def host(self) -> str:
        """The address to bind, without IPv6 brackets."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        return is_loopback(self.host)


def split_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` into ``(host, port)``; ValueError saying what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port, such as 127.0.0.1:8765")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets, such as [::1]:8765")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535 (0: any free port)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IP address (or localhost); name the address to "
                             "listen on, such as 127.0.0.1") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (an unspecified one, 0.0.0.0 or ::, is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NotifySettings:
    """The nudge (the ``notify:`` section): a small JSON message POSTed to ``url`` when files wait
    in review or land in quarantine, at most once per ``every`` seconds. ``url`` None: off."""

    url: str | None = None  # http(s)://host[:port]/path[?query]; a user:password@ part becomes Basic auth
    every: float = 3600.0  # seconds, > 0


Albums = Literal["together", "per_track"]
ALBUMS_CHOICES: tuple[str, ...] = get_args(Albums)
Duplicates = Literal["keep", "skip", "quarantine"]
DUPLICATES_CHOICES: tuple[str, ...] = get_args(Duplicates)
TagMode = Literal["replace", "fill", "append"]
TAG_MODE_CHOICES: tuple[str, ...] = get_args(TagMode)


@dataclass(frozen=True)
class Settings:
    """Every setting of the daemon, resolved: absolute paths, lower-case extensions."""

    inbox: Path
    library: Path
    review_dir: Path
    quarantine_dir: Path
    state_dir: Path
    model: Path | None = None
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS  # lower case, no dot
    min_confidence: float = 0.4
    settle_seconds: float = 2.0
    rescan_interval: float = 300.0
    on_conflict: OnConflict = "rename"
    workers: int = 1
    polling: bool = False
    albums: Albums = "together"  # together: an album folder is filed whole; per_track: file by file
    folder_quiet_seconds: float = 300.0  # a folder of the inbox is taken once nothing in it changed this long
    write_tags: bool = False  # true: the genre goes into each placed file's genre tag
    path_template: str | None = None  # None: {genre}/{album_folder}/{filename} (genre_daemon/path_template.py)
    duplicates: Duplicates = "keep"  # a file whose content is already in the library: keep | skip | quarantine
    genre_names: tuple[tuple[str, str], ...] = ()  # the model's genre -> the user's name (folders, tags, page)
    tag_mode: TagMode = "replace"  # replace | fill (only a file with no genre) | append (theirs kept, ours added)
    tag_genres: int = 1  # the most genres written to a file's genre tag
    use_existing_genre: bool = False  # a file's own genre tag as evidence, checked against the sound
    use_artist_genre: bool = True  # a song leans towards the genre its artist already has in the library
    folder_mode: int = 0o755  # folders the daemon makes, whatever the umask
    retrain: RetrainSettings = RetrainSettings()
    web: WebSettings = WebSettings()
    notify: NotifySettings = NotifySettings()
    source: Path | None = None  # the file it was read from; None: built-in defaults

    @property
    def journal_path(self) -> Path:
        """The SQLite journal, always inside ``state_dir``."""
        return self.state_dir / JOURNAL_NAME


TOP_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings) if f.name != "source")
RETRAIN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RetrainSettings))
WEB_KEYS: tuple[str, ...] = tuple(f.name for f in fields(WebSettings))
NOTIFY_KEYS: tuple[str, ...] = tuple(f.name for f in fields(NotifySettings))


def default_config_path() -> Path:
    """``$GENRE_DAEMON_CONFIG`` if set (``~`` expanded), else ``~/.config/genre-daemon/config.yaml``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    return Path.home() / ".config" / "genre-daemon" / "config.yaml"
