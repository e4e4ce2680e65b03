"""The value converters and the problem collector that validation is built from.

A converter takes a value as YAML gave it and returns it typed (a whole number in a range, a
finite number, a boolean, an ``on_conflict`` choice, extensions, a folder path with ``$VARS``
and ``~`` expanded and made absolute, a list of them, a ``host:port``), or raises
:class:`BadValue` with a reason the user can act on. :class:`Problems` runs converters over a
mapping and keeps one message per refused key, naming the file, so all are shown at once.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from genre_daemon.config.settings import ON_CONFLICT_CHOICES, split_listen
from genre_daemon.path_template import Template, TemplateError


class BadValue(Exception):
    """One value refused; ``reason`` completes ``<file>: <key>: <reason>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def show(value: object) -> str:
    """A value as the user would recognise it from YAML, shortened."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def expected(what: str, value: object) -> BadValue:
    hint = ""
    if isinstance(value, str) and _looks_numeric(value):
        hint = " (text, not a number: " + (
            "YAML reads 1e3 as text, write 1000 or 1.0e3)" if "e" in value.lower()
            else "remove the quotes)"
        )
    return BadValue(f"expected {what}, got {show(value)}{hint}")


_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _looks_numeric(text: str) -> bool:
    return _NUMERIC.fullmatch(text.strip()) is not None


def whole(lo: int, hi: int | None = None) -> Callable[[object], int]:
    what = f"a whole number >= {lo}" if hi is None else f"a whole number from {lo} to {hi}"

    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise expected(what, value)
        if value < lo or (hi is not None and value > hi):
            raise expected(what, value)
        return value

    return convert


def number(what: str, ok: Callable[[float], bool]) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise expected(what, value)
        number = float(value)
        if not math.isfinite(number) or not ok(number):
            raise expected(what, value)
        return number

    return convert


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise expected("true or false", value)
    return value


def on_conflict(value: object) -> str:
    if value not in ON_CONFLICT_CHOICES or not isinstance(value, str):
        raise expected("one of " + ", ".join(ON_CONFLICT_CHOICES), value)
    return value


def choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    """One of a fixed set of words (``albums``, ``duplicates``)."""
    def convert(value: object) -> str:
        if not isinstance(value, str) or value not in choices:
            raise expected("one of " + ", ".join(choices), value)
        return value
    return convert


def path_template(value: object) -> str | None:
    """A path template (checked: fields known, relative, inside the library), or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise expected("a path template such as '{genre}/{albumartist|artist}/{album}/{filename}', or null", value)
    try:
        Template.parse(value)
    except TemplateError as exc:
        raise BadValue(str(exc)) from None
    return value


_EXTENSION = re.compile(r"[a-z0-9]+")


def extensions(value: object) -> tuple[str, ...]:
    what = "a non-empty list of file extensions such as [mp3, flac]"
    if not isinstance(value, list) or not value:
        raise expected(what, value)
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise expected(f"{what}; each one text", item)
        ext = item.strip()
        ext = (ext[1:] if ext.startswith(".") else ext).lower()
        if not _EXTENSION.fullmatch(ext):
            raise expected(f"{what}; each one letters and digits only, one optional leading dot", item)
        if ext not in out:
            out.append(ext)
    return tuple(out)


def listen(value: object) -> str:
    if not isinstance(value, str):
        raise expected("host:port, such as 127.0.0.1:8765", value)
    text = value.strip()
    try:
        split_listen(text)
    except ValueError as exc:
        raise BadValue(f"{exc}, got {show(value)}") from None
    return text


_VAR = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<open>\{))")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` from ``environ`` (unset is an error), then a leading ``~``."""

    def variable(match: re.Match[str]) -> str:
        if match.group("open") is not None:
            raise BadValue(f"unclosed '${{' in {show(text)}")
        name = match.group("braced") if match.group("braced") is not None else match.group("plain")
        if not _VAR_NAME.fullmatch(name):
            raise BadValue(f"'${{{name}}}' is not an environment variable name, in {show(text)}")
        if name not in environ:
            raise BadValue(f"environment variable {name} is not set (used in {show(text)})")
        return environ[name]

    text = _VAR.sub(variable, text)
    if text == "~" or text.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        text = home + text[1:]
    elif text.startswith("~"):
        expanded = os.path.expanduser(text)
        if expanded.startswith("~"):
            user = text[1:].split("/", 1)[0]
            raise BadValue(f"no user named {user!r} to expand {show(text)}")
        text = expanded
    return text


def path_converter(base_dir: Path | None, environ: Mapping[str, str]) -> Callable[[object], Path]:
    def convert(value: object) -> Path:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if value is None:
            raise BadValue("expected a folder path, got null (a bare ~ is YAML for null: write '~')")
        if not isinstance(value, str) or not value.strip():
            raise expected("a folder path", value)
        if "\0" in value:
            raise expected("a folder path without NUL characters", value)
        text = _expand(value, environ)
        if not os.path.isabs(text):
            text = os.path.join(base_dir if base_dir is not None else os.getcwd(), text)
        return Path(os.path.abspath(text))

    return convert


def optional(convert: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda value: None if value is None else convert(value)


def path_list(convert: Callable[[object], Path]) -> Callable[[object], tuple[Path, ...]]:
    def convert_all(value: object) -> tuple[Path, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise expected("a list of folder paths", value)
        out: list[Path] = []
        for index, item in enumerate(value):
            try:
                path = convert(item)
            except BadValue as bad:
                raise BadValue(f"[{index}]: {bad.reason}") from None
            if path not in out:
                out.append(path)
        return tuple(out)

    return convert_all


class Problems:
    """Collects one message per refused key, all naming the source file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []

    def add(self, key: str, reason: str) -> None:
        self.messages.append(f"{self.source}: {key}: {reason}" if key else f"{self.source}: {reason}")

    def unknown(self, key: object, known: tuple[str, ...], prefix: str = "") -> None:
        if not isinstance(key, str):
            self.add(prefix + show(key), "unknown key (keys are names such as " + known[0] + ")")
            return
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {prefix}{close[0]}?" if close else "known keys: " + ", ".join(known)
        self.add(prefix + key, f"unknown key; {hint}")

    def section(self, value: object, name: str, known: tuple[str, ...]) -> Mapping[Any, Any] | None:
        """The mapping of section ``name`` (``retrain``, ``web``), its unknown keys reported; None
        (all defaults) when it is absent or empty (``name:`` alone), or not a mapping (reported)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(name, expected("a mapping of " + ", ".join(known), value).reason)
            return None
        for key in value:
            if key not in known:
                self.unknown(key, known, prefix=name + ".")
        return value

    def convert(self, mapping: Mapping[Any, Any], key: str, convert: Callable[[object], Any],
                default: Any, prefix: str = "") -> Any:
        if key not in mapping:
            return default
        try:
            return convert(mapping[key])
        except BadValue as bad:
            sep = "" if bad.reason.startswith("[") else ": "
            self.messages.append(f"{self.source}: {prefix}{key}{sep}{bad.reason}")
            return default


def genre_names(value: object) -> tuple[tuple[str, str], ...]:
    """``genre_names``: a mapping of the model's genre to the user's name, each name one safe
    folder name (several genres may share a name: a merge). Kept as sorted pairs (frozen)."""
    from genre_daemon.names import safe_component

    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise expected("a mapping of genre: name, e.g. {hiphop: Hip-Hop}", value)
    pairs: list[tuple[str, str]] = []
    for genre, name in value.items():
        if not isinstance(genre, str) or not genre.strip():
            raise BadValue(f"a genre must be a name, got {show(genre)}")
        if not isinstance(name, str) or not name.strip():
            raise BadValue(f"{genre}: the name must be text, got {show(name)}")
        if safe_component(name, fallback="") != name:
            raise BadValue(f"{genre}: {show(name)} is not one safe folder name (no '/', '\\', control "
                           "characters, leading dots, trailing dots or spaces)")
        pairs.append((genre, name))
    return tuple(sorted(pairs))


def folder_mode(value: object) -> int:
    """``folder_mode``: an octal mode as text (``"0755"``), the owner keeping rwx."""
    text = value if isinstance(value, str) else None
    if text is None or re.fullmatch(r"0?[0-7]{3}", text.strip()) is None:
        raise expected('an octal mode in quotes, e.g. "0755"', value)
    mode = int(text.strip(), 8)
    if mode & 0o700 != 0o700:
        raise BadValue(f"{show(value)} takes the owner's own access away (it needs 07xx)")
    return mode


def notify_url(value: object) -> str | None:
    """``notify.url``: null (off), or an http(s) URL with a host, such as
    ``https://ntfy.sh/my-topic`` (no spaces or control characters; a valid port)."""
    from urllib.parse import urlsplit

    what = "an http:// or https:// URL with a host, such as https://ntfy.sh/my-topic, or null"
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise expected(what, value)
    text = value.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise BadValue(f"{show(value)} holds a space or control character (write %20 for a space)")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise BadValue(f"{show(value)} is not http:// or https:// ({what})")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise BadValue(f"{show(value)} has a port that is not a number from 1 to 65535")
    if not host:
        raise BadValue(f"{show(value)} names no host ({what})")
    return text
