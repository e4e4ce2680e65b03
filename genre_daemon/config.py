"""The config file: YAML (``yaml.safe_load``, refusing duplicate keys) into typed, validated,
frozen :class:`Settings`.

Every refusal is a :class:`~genre_daemon.errors.ConfigError` whose message names the file, the
key (dotted: ``retrain.min_per_genre``), the bad value and what is expected, one line per
problem, so ``genre-daemon check-config`` can show them all at once. Paths have ``~`` and
environment variables expanded and are made absolute (a relative path is relative to the config
file's folder); symlinks are kept as written but the folder roles are compared by their real
paths, so two names for one folder are caught. Nothing here creates or touches a folder.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from genre_daemon.errors import ConfigError

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
    retrain: RetrainSettings = RetrainSettings()
    web: WebSettings = WebSettings()
    source: Path | None = None  # the file it was read from; None: built-in defaults

    @property
    def journal_path(self) -> Path:
        """The SQLite journal, always inside ``state_dir``."""
        return self.state_dir / JOURNAL_NAME


TOP_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings) if f.name != "source")
RETRAIN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RetrainSettings))
WEB_KEYS: tuple[str, ...] = tuple(f.name for f in fields(WebSettings))


def default_config_path() -> Path:
    """``$GENRE_DAEMON_CONFIG`` if set (``~`` expanded), else ``~/.config/genre-daemon/config.yaml``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    return Path.home() / ".config" / "genre-daemon" / "config.yaml"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate a config file; raises :class:`ConfigError` naming the file on any problem.

    ``None`` means :func:`default_config_path`. A missing file is an error when it was asked for
    (an argument or ``$GENRE_DAEMON_CONFIG``); when the plain default file does not exist, the
    built-in defaults are used (``source`` is then ``None``), so the daemon runs without one.
    """
    if path is None:
        path = default_config_path()
        if not os.environ.get(CONFIG_ENV) and not os.path.lexists(path):
            return parse_settings({}, source="<defaults>")
    file = Path(os.path.expanduser(os.fspath(path)))
    label = os.fspath(file)
    data = _read_yaml(file, label)
    base_dir = Path(os.path.abspath(file)).parent
    return _parse(data, label, base_dir, os.environ, Path(os.path.abspath(file)))


def parse_settings(
    data: object,
    source: str = "<config>",
    base_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate an already-loaded YAML document (``None`` counts as empty) into :class:`Settings`.

    ``source`` names the file in messages; relative paths are taken from ``base_dir`` (the
    current folder when ``None``); ``environ`` (default ``os.environ``) expands ``$VARS`` and
    ``~``. Reads no file; the only filesystem look-up is resolving symlinks to compare roles.
    """
    return _parse(data, source, base_dir, os.environ if environ is None else environ, None)


def describe(settings: Settings) -> str:
    """Every resolved value as YAML with comments, for ``genre-daemon check-config``.

    Feeding the text back to :func:`parse_settings` gives the same settings.
    """
    r = settings.retrain
    values: dict[str, Any] = {
        **{key: str(getattr(settings, key)) for key in DEFAULT_FOLDERS},
        "model": None if settings.model is None else str(settings.model),
        "extensions": list(settings.extensions),
        "min_confidence": settings.min_confidence,
        "settle_seconds": settings.settle_seconds,
        "rescan_interval": settings.rescan_interval,
        "on_conflict": settings.on_conflict,
        "workers": settings.workers,
        "polling": settings.polling,
        "retrain": {
            "enabled": r.enabled,
            "min_new_labels": r.min_new_labels,
            "min_interval": r.min_interval,
            "min_per_genre": r.min_per_genre,
            "labelled_dirs": [str(p) for p in r.labelled_dirs],
        },
        "web": {
            "enabled": settings.web.enabled,
            "listen": settings.web.listen,
            "allow_remote": settings.web.allow_remote,
        },
    }
    origin = "built-in defaults (no config file)" if settings.source is None else str(settings.source)
    header = [
        f"# genre-daemon settings from {_one_line(origin)}",
        f"# journal: {_one_line(str(settings.journal_path))}",
    ]
    if settings.model is None:
        header.append("# model: null = the newest promoted model in state_dir, else the shipped default")
    body = yaml.safe_dump(
        values, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1_000_000
    )
    return "\n".join(header) + "\n" + body


def _one_line(text: str) -> str:
    """``text`` for a comment line: quoted with escapes if it holds a newline or other control."""
    return text if text.isprintable() else repr(text)


# --- reading ---------------------------------------------------------------------------------


def _read_yaml(file: Path, label: str) -> object:
    """The file's YAML document; every failure becomes a ConfigError naming the file."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{label}: no such config file (start from config.example.yaml, "
            f"or pass the path of an existing one)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a folder, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        return _load_unique(text)
    except _DuplicateKeys as dup:
        raise ConfigError("\n".join(f"{label}: {line}" for line in dup.lines)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (from line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        what = "; ".join(part for part in (context, exc.problem or "") if part)
        raise ConfigError(f"{label}: {where}not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {exc}") from None


class _DuplicateKeys(Exception):
    """Keys given twice in one mapping; ``lines`` completes ``<file>: <line>``, one per key."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the
    last one silently, so a forgotten second ``inbox:`` would win unseen). Everything else is
    plain ``safe_load``: same tags, same constructors, merge keys (``<<``) allowed."""

    def construct_document(self, node: yaml.Node) -> Any:
        problems = self._duplicates(node)
        if problems:
            raise _DuplicateKeys(problems)
        return super().construct_document(node)

    def _duplicates(self, root: yaml.Node) -> list[str]:
        """One message per repeated key in any mapping of the document, dotted path first."""
        out: list[str] = []
        seen_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, str]] = [(root, "")]
        while stack:
            node, path = stack.pop()
            if id(node) in seen_nodes:  # an alias of a node already checked (or a cycle)
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node.value))))
                continue
            if not isinstance(node, yaml.MappingNode):
                continue
            first: dict[object, yaml.Node] = {}
            children: list[tuple[yaml.Node, str]] = []
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    children.append((value_node, path))
                    continue
                key = self._key(key_node)
                name = f"{path}.{key}" if path else str(key)
                if key is not None:
                    if key in first:
                        a, b = _where(first[key]), _where(key_node)
                        if a == b:  # one line ({a: 1, a: 2}): the columns tell them apart
                            a, b = _where(first[key], True), _where(key_node, True)
                        out.append(f"{name}: given twice, at {a} and at {b} (YAML would silently "
                                   f"keep only the second); remove one")
                    else:
                        first[key] = key_node
                children.append((value_node, name))
            stack.extend(reversed(children))
        return out

    def _key(self, node: yaml.Node) -> object:
        """A scalar key as ``safe_load`` would construct it (``yes`` and ``true`` are one key);
        None for a key that is not a hashable scalar (left to the normal checks)."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            value = self.construct_object(node)
            hash(value)
        except (yaml.YAMLError, TypeError):
            return None
        return value  # 1 and true are one key to safe_load's dict too


def _where(node: yaml.Node, column: bool = False) -> str:
    """``line N`` (and ``, column M``) of a node, counted from 1."""
    mark = node.start_mark
    return f"line {mark.line + 1}" + (f", column {mark.column + 1}" if column else "")


def _load_unique(text: str) -> object:
    """``yaml.safe_load(text)`` with duplicate keys refused: the same steps, with
    :class:`_UniqueKeyLoader` (a ``SafeLoader``) in place of ``SafeLoader``."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def missing_folders(settings: Settings) -> list[tuple[str, Path]]:
    """``(key, path)`` of each configured folder that does not exist now: the five roles
    (``inbox``, ``library``, ``review_dir``, ``quarantine_dir``, ``state_dir``: the daemon creates
    them at start, so a typo silently means a new empty folder) and each of
    ``retrain.labelled_dirs`` (``retrain.labelled_dirs[i]``: never created, just no labels).
    Looks only; creates nothing."""
    out = [(key, getattr(settings, key)) for key in DEFAULT_FOLDERS
           if not os.path.exists(getattr(settings, key))]
    out += [(f"retrain.labelled_dirs[{i}]", path) for i, path in enumerate(settings.retrain.labelled_dirs)
            if not os.path.exists(path)]
    return out


# --- validation ------------------------------------------------------------------------------


class _Bad(Exception):
    """One value refused; ``reason`` completes ``<file>: <key>: <reason>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: object) -> str:
    """A value as the user would recognise it from YAML, shortened."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expected(what: str, value: object) -> _Bad:
    hint = ""
    if isinstance(value, str) and _looks_numeric(value):
        hint = " (text, not a number: " + (
            "YAML reads 1e3 as text, write 1000 or 1.0e3)" if "e" in value.lower()
            else "remove the quotes)"
        )
    return _Bad(f"expected {what}, got {_show(value)}{hint}")


_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _looks_numeric(text: str) -> bool:
    return _NUMERIC.fullmatch(text.strip()) is not None


def _whole(lo: int, hi: int | None = None) -> Callable[[object], int]:
    what = f"a whole number >= {lo}" if hi is None else f"a whole number from {lo} to {hi}"

    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _expected(what, value)
        if value < lo or (hi is not None and value > hi):
            raise _expected(what, value)
        return value

    return convert


def _number(what: str, ok: Callable[[float], bool]) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expected(what, value)
        number = float(value)
        if not math.isfinite(number) or not ok(number):
            raise _expected(what, value)
        return number

    return convert


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _expected("true or false", value)
    return value


def _on_conflict(value: object) -> str:
    if value not in ON_CONFLICT_CHOICES or not isinstance(value, str):
        raise _expected("one of " + ", ".join(ON_CONFLICT_CHOICES), value)
    return value


_EXTENSION = re.compile(r"[a-z0-9]+")


def _extensions(value: object) -> tuple[str, ...]:
    what = "a non-empty list of file extensions such as [mp3, flac]"
    if not isinstance(value, list) or not value:
        raise _expected(what, value)
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _expected(f"{what}; each one text", item)
        ext = item.strip()
        ext = (ext[1:] if ext.startswith(".") else ext).lower()
        if not _EXTENSION.fullmatch(ext):
            raise _expected(f"{what}; each one letters and digits only, one optional leading dot", item)
        if ext not in out:
            out.append(ext)
    return tuple(out)


_VAR = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<open>\{))")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` from ``environ`` (unset is an error), then a leading ``~``."""

    def variable(match: re.Match[str]) -> str:
        if match.group("open") is not None:
            raise _Bad(f"unclosed '${{' in {_show(text)}")
        name = match.group("braced") if match.group("braced") is not None else match.group("plain")
        if not _VAR_NAME.fullmatch(name):
            raise _Bad(f"'${{{name}}}' is not an environment variable name, in {_show(text)}")
        if name not in environ:
            raise _Bad(f"environment variable {name} is not set (used in {_show(text)})")
        return environ[name]

    text = _VAR.sub(variable, text)
    if text == "~" or text.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        text = home + text[1:]
    elif text.startswith("~"):
        expanded = os.path.expanduser(text)
        if expanded.startswith("~"):
            user = text[1:].split("/", 1)[0]
            raise _Bad(f"no user named {user!r} to expand {_show(text)}")
        text = expanded
    return text


def _path_converter(base_dir: Path | None, environ: Mapping[str, str]) -> Callable[[object], Path]:
    def convert(value: object) -> Path:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if value is None:
            raise _Bad("expected a folder path, got null (a bare ~ is YAML for null: write '~')")
        if not isinstance(value, str) or not value.strip():
            raise _expected("a folder path", value)
        if "\0" in value:
            raise _expected("a folder path without NUL characters", value)
        text = _expand(value, environ)
        if not os.path.isabs(text):
            text = os.path.join(base_dir if base_dir is not None else os.getcwd(), text)
        return Path(os.path.abspath(text))

    return convert


def _optional(convert: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda value: None if value is None else convert(value)


def _path_list(convert: Callable[[object], Path]) -> Callable[[object], tuple[Path, ...]]:
    def convert_all(value: object) -> tuple[Path, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _expected("a list of folder paths", value)
        out: list[Path] = []
        for index, item in enumerate(value):
            try:
                path = convert(item)
            except _Bad as bad:
                raise _Bad(f"[{index}]: {bad.reason}") from None
            if path not in out:
                out.append(path)
        return tuple(out)

    return convert_all


class _Problems:
    """Collects one message per refused key, all naming the source file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []

    def add(self, key: str, reason: str) -> None:
        self.messages.append(f"{self.source}: {key}: {reason}" if key else f"{self.source}: {reason}")

    def unknown(self, key: object, known: tuple[str, ...], prefix: str = "") -> None:
        if not isinstance(key, str):
            self.add(prefix + _show(key), "unknown key (keys are names such as " + known[0] + ")")
            return
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {prefix}{close[0]}?" if close else "known keys: " + ", ".join(known)
        self.add(prefix + key, f"unknown key; {hint}")

    def convert(self, mapping: Mapping[Any, Any], key: str, convert: Callable[[object], Any],
                default: Any, prefix: str = "") -> Any:
        if key not in mapping:
            return default
        try:
            return convert(mapping[key])
        except _Bad as bad:
            sep = "" if bad.reason.startswith("[") else ": "
            self.messages.append(f"{self.source}: {prefix}{key}{sep}{bad.reason}")
            return default


def _parse(
    data: object,
    source: str,
    base_dir: Path | None,
    environ: Mapping[str, str],
    source_path: Path | None,
) -> Settings:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of settings (lines of 'key: value') at the top level, "
            f"got {type(data).__name__} {_show(data)}"
        )
    problems = _Problems(source)
    for key in data:
        if key not in TOP_KEYS:
            problems.unknown(key, TOP_KEYS)

    to_path = _path_converter(base_dir, environ)
    defaults_path = _path_converter(None, environ)
    folders = {
        key: problems.convert(data, key, to_path, None) if key in data else defaults_path(raw)
        for key, raw in DEFAULT_FOLDERS.items()
    }

    retrain = _parse_retrain(data.get("retrain"), problems, to_path)
    web = _parse_web(data.get("web"), problems)
    values = {
        "model": problems.convert(data, "model", _optional(to_path), None),
        "extensions": problems.convert(data, "extensions", _extensions, DEFAULT_EXTENSIONS),
        "min_confidence": problems.convert(
            data, "min_confidence", _number("a number from 0 to 1", lambda x: 0 <= x <= 1), 0.4),
        "settle_seconds": problems.convert(
            data, "settle_seconds", _number("a number of seconds >= 0", lambda x: x >= 0), 2.0),
        "rescan_interval": problems.convert(
            data, "rescan_interval", _number("a number of seconds > 0", lambda x: x > 0), 300.0),
        "on_conflict": problems.convert(data, "on_conflict", _on_conflict, "rename"),
        "workers": problems.convert(data, "workers", _whole(1, 32), 1),
        "polling": problems.convert(data, "polling", _boolean, False),
    }
    good_folders = {k: v for k, v in folders.items() if v is not None}
    _check_roles(good_folders, retrain.labelled_dirs, problems)
    if problems.messages:
        raise ConfigError("\n".join(problems.messages))
    return Settings(**folders, **values, retrain=retrain, web=web, source=source_path)


def _parse_retrain(
    section: object, problems: _Problems, to_path: Callable[[object], Path]
) -> RetrainSettings:
    """The ``retrain:`` section; absent or empty (``retrain:`` alone) means all defaults."""
    defaults = RetrainSettings()
    if section is None:
        return defaults
    if not isinstance(section, Mapping):
        problems.add("retrain", _expected("a mapping of " + ", ".join(RETRAIN_KEYS), section).reason)
        return defaults
    for key in section:
        if key not in RETRAIN_KEYS:
            problems.unknown(key, RETRAIN_KEYS, prefix="retrain.")
    p = "retrain."
    return RetrainSettings(
        enabled=problems.convert(section, "enabled", _boolean, defaults.enabled, p),
        min_new_labels=problems.convert(
            section, "min_new_labels", _whole(1), defaults.min_new_labels, p),
        min_interval=problems.convert(
            section, "min_interval", _number("a number of seconds >= 0", lambda x: x >= 0),
            defaults.min_interval, p),
        min_per_genre=problems.convert(
            section, "min_per_genre", _whole(1), defaults.min_per_genre, p),
        labelled_dirs=problems.convert(
            section, "labelled_dirs", _path_list(to_path),
            defaults.labelled_dirs, p),
    )


def _listen(value: object) -> str:
    if not isinstance(value, str):
        raise _expected("host:port, such as 127.0.0.1:8765", value)
    text = value.strip()
    try:
        split_listen(text)
    except ValueError as exc:
        raise _Bad(f"{exc}, got {_show(value)}") from None
    return text


def _parse_web(section: object, problems: _Problems) -> WebSettings:
    """The ``web:`` section; absent or empty means all defaults (off). A listen address that
    is not loopback is refused unless ``allow_remote`` says it is meant."""
    defaults = WebSettings()
    if section is None:
        return defaults
    if not isinstance(section, Mapping):
        problems.add("web", _expected("a mapping of " + ", ".join(WEB_KEYS), section).reason)
        return defaults
    for key in section:
        if key not in WEB_KEYS:
            problems.unknown(key, WEB_KEYS, prefix="web.")
    p = "web."
    web = WebSettings(
        enabled=problems.convert(section, "enabled", _boolean, defaults.enabled, p),
        listen=problems.convert(section, "listen", _listen, defaults.listen, p),
        allow_remote=problems.convert(section, "allow_remote", _boolean, defaults.allow_remote, p),
    )
    if not web.loopback and not web.allow_remote:
        problems.add("web.listen", f"{web.listen} is not a loopback address (127.0.0.1, ::1, localhost), so "
                     "other machines could reach the page; set web.allow_remote: true if that is meant")
    return web


# (inner, outer, why it is refused): a folder role that must not lie inside another.
_NOT_INSIDE: tuple[tuple[str, str, str], ...] = (
    ("library", "inbox", "the daemon would take the files it sorted as new arrivals"),
    ("inbox", "library", "new arrivals would already be inside the library"),
    ("state_dir", "inbox", "the journal and models would be taken as new arrivals"),
    ("state_dir", "library", "the journal and models would sit among the music"),
    ("review_dir", "inbox", "files set aside for review would be taken again"),
    ("quarantine_dir", "library", "broken files would be read as examples of a genre"),
)


def _real(path: Path) -> Path:
    """The path with symlinks resolved as far as it exists, for comparing roles."""
    return Path(os.path.normcase(os.path.realpath(path)))


def _named(path: Path, real: Path) -> str:
    return str(path) if path == real else f"{path}, really {real}"


def _check_roles(folders: dict[str, Path], labelled: tuple[Path, ...], problems: _Problems) -> None:
    """Five different folders, none nested where the daemon would trip over its own files."""
    real = {key: _real(path) for key, path in folders.items()}
    for a, b in itertools.combinations(folders, 2):
        if real[a] == real[b]:
            problems.add(
                f"{a} and {b}",
                f"both are the folder {_named(folders[a], real[a])}"
                + ("" if folders[a] == folders[b] else f" (written {folders[b]})")
                + "; each role needs its own folder",
            )
    for inner, outer, why in _NOT_INSIDE:
        if inner in real and outer in real and real[inner] != real[outer]:
            if real[inner].is_relative_to(real[outer]):
                problems.add(
                    inner,
                    f"{_named(folders[inner], real[inner])} is inside {outer} "
                    f"({_named(folders[outer], real[outer])}): {why}",
                )
    if "inbox" in real:
        for index, path in enumerate(labelled):
            if _real(path).is_relative_to(real["inbox"]):
                problems.add(
                    f"retrain.labelled_dirs[{index}]",
                    f"{_named(path, _real(path))} is inside inbox ({_named(folders['inbox'], real['inbox'])}): "
                    "labelled examples would be taken as new arrivals and moved",
                )
