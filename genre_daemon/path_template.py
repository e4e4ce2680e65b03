"""Path templates: where in the library a file or an album goes, from its genre and its tags (pure).

A template is a relative path whose components may hold fields in braces::

    {genre}/{albumartist|artist|Unknown Artist}/{year} - {album|album_folder}/{track:02} {title|stem}

``{a|b|Text}`` takes the first of ``a``, ``b`` that has a value; a last alternative that is not a
field is literal text. ``{track:02}`` pads a number. The default, :data:`DEFAULT`, keeps the
layout genre-daemon always had: ``{genre}/{filename}`` for a loose file and
``{genre}/<album folder>/...`` for an album, because a component that comes out empty (there is no
``album_folder`` for a loose file) is dropped.

An album is placed as a folder: the template's folders (all but its last component), filled with
the album's fields, name the album's folder, and the album's files keep their own names and layout
under it (a ``.cue`` sheet or an ``.m3u`` names its tracks: renaming them would break it). A loose
file's last component is its file name, which always keeps the file's own extension.

Every component is made one safe path component (:func:`genre_daemon.names.safe_component`), so
whatever the tags say, the result is inside the library.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from genre_daemon.names import NAME_MAX, nbytes, safe_component, safe_filename

DEFAULT = "{genre}/{album_folder}/{filename}"

FIELDS = frozenset({
    "genre", "album_folder", "filename", "stem", "ext",
    "artist", "albumartist", "album", "title", "track", "disc", "year",
})
TAG_FIELDS = ("artist", "albumartist", "album", "title", "track", "disc", "year")  # read from the file's tags
_NUMERIC = frozenset({"track", "disc", "year"})
_FIELD = re.compile(r"\{([^{}]*)\}")
_SPEC = re.compile(r"0?[1-9]")

Values = Mapping[str, "str | int | None"]


class TemplateError(ValueError):
    """A template that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class _Slot:
    choices: tuple[str, ...]  # field names, tried in order
    literal: str | None  # the fallback text, when the last alternative is not a field
    spec: str  # "", or a zero-pad width such as "02"


@dataclass(frozen=True)
class Template:
    """A parsed path template (see the module docstring)."""

    text: str
    components: tuple[tuple[str | _Slot, ...], ...]

    @classmethod
    def parse(cls, text: str | None) -> Template:
        """``text`` checked and parsed; None means :data:`DEFAULT`. Raises :class:`TemplateError`."""
        text = DEFAULT if text is None else text
        if not isinstance(text, str) or not text.strip():
            raise TemplateError("a path template must be a non-empty string such as " + repr(DEFAULT))
        if text.startswith(("/", "~")) or "\\" in text:
            raise TemplateError(f"{text!r}: a path template is relative to the library (no leading / or ~, no \\)")
        parts = PurePosixPath(text).parts
        if any(p in (".", "..") for p in parts):
            raise TemplateError(f"{text!r}: '.' and '..' are not allowed in a path template")
        components = tuple(_parse_component(p, text) for p in text.split("/") if p)
        if not components:
            raise TemplateError(f"{text!r}: a path template needs at least one component")
        last = components[-1]
        if not any(isinstance(x, _Slot) for x in last) and len(components) == 1:
            raise TemplateError(f"{text!r}: the file name part needs a field, e.g. {{filename}}")
        return cls(text, components)

    def fields(self) -> frozenset[str]:
        return frozenset(n for comp in self.components for x in comp if isinstance(x, _Slot) for n in x.choices)

    def file_path(self, values: Values, suffix: str) -> PurePosixPath:
        """A loose file's path relative to the library; its name keeps ``suffix`` (``.mp3``).

        A name that would lose it when made safe (a title of ``.``: ``..flac`` loses its leading
        dots and becomes ``flac``) has its stem made safe on its own, the file's own stem
        standing in for one that leaves nothing."""
        parts = self._render(self.components[:-1], values)
        name = _render_component(self.components[-1], values) or str(values.get("filename") or "")
        if suffix and name.lower().endswith(suffix.lower()):
            name, suffix = name[: -len(suffix)], name[-len(suffix):]
        whole = safe_filename(name + suffix) if name else ""
        if not whole.endswith(suffix) or len(whole) <= len(suffix):
            room = max(NAME_MAX - nbytes(suffix), NAME_MAX // 2)
            own = safe_component(str(values.get("stem") or ""), max_bytes=room, normalize=False, fallback="untitled")
            whole = safe_filename(safe_component(name, max_bytes=room, normalize=False, fallback=own) + suffix)
        parts.append(whole)
        return PurePosixPath(*parts)

    def album_path(self, values: Values) -> PurePosixPath:
        """An album's folder relative to the library: the template's folders, then the album's
        own folder name when the template's folders do not already end with a field that names
        it (``album_folder``, ``album``)."""
        parts = self._render(self.components[:-1], values)
        if not parts or not _names_album(self.components[:-1]):
            parts.append(safe_component(str(values.get("album_folder") or "Unknown Album"), max_bytes=NAME_MAX,
                                        normalize=False, fallback="Unknown Album"))
        return PurePosixPath(*parts)

    @staticmethod
    def _render(components: tuple[tuple[str | _Slot, ...], ...], values: Values) -> list[str]:
        out = []
        for comp in components:
            text = _render_component(comp, values)
            if text:
                out.append(safe_component(text, max_bytes=NAME_MAX, normalize=False, fallback="_"))
        return out


def _names_album(components: tuple[tuple[str | _Slot, ...], ...]) -> bool:
    """Whether the last folder of a template says which album (so the album's own folder name
    is not added under it again)."""
    if not components:
        return False
    return any(isinstance(x, _Slot) and ({"album", "album_folder"} & set(x.choices)) for x in components[-1])


def _parse_component(part: str, whole: str) -> tuple[str | _Slot, ...]:
    out: list[str | _Slot] = []
    pos = 0
    for m in _FIELD.finditer(part):
        if m.start() > pos:
            out.append(_plain(part[pos:m.start()], whole))
        out.append(_slot(m.group(1), whole))
        pos = m.end()
    if pos < len(part):
        out.append(_plain(part[pos:], whole))
    return tuple(out)


def _plain(text: str, whole: str) -> str:
    if "{" in text or "}" in text:
        raise TemplateError(f"{whole!r}: unbalanced brace in {text!r}")
    return text


def _slot(inner: str, whole: str) -> _Slot:
    body, _, spec = inner.partition(":")
    alternatives = [a.strip() for a in body.split("|")]
    if not alternatives or not alternatives[0]:
        raise TemplateError(f"{whole!r}: an empty field {{{inner}}}")
    literal = None
    if alternatives[-1] not in FIELDS and len(alternatives) > 1:
        literal = alternatives.pop()
    unknown = [a for a in alternatives if a not in FIELDS]
    if unknown:
        raise TemplateError(f"{whole!r}: unknown field {unknown[0]!r} (known: {', '.join(sorted(FIELDS))})")
    if spec and not _SPEC.fullmatch(spec):
        raise TemplateError(f"{whole!r}: {{{inner}}}: the only format is a zero-pad width such as :02")
    if spec and not set(alternatives) <= _NUMERIC:
        raise TemplateError(f"{whole!r}: {{{inner}}}: a width applies to track, disc and year only")
    return _Slot(tuple(alternatives), literal, spec)


def _render_component(comp: tuple[str | _Slot, ...], values: Values) -> str:
    """A component's text; empty when it has fields and none of them has a value (so
    ``{year} - {album}`` with neither is dropped, not left as `` - ``)."""
    filled = [x if isinstance(x, str) else _value(x, values) for x in comp]
    slots = [f for x, f in zip(comp, filled) if not isinstance(x, str)]
    if slots and not any(slots):
        return ""
    return "".join(filled).strip()


def _value(slot: _Slot, values: Values) -> str:
    for name in slot.choices:
        v = values.get(name)
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if slot.spec and isinstance(v, int):
            return f"{v:{slot.spec}d}"
        return str(v).strip()
    return slot.literal or ""


def file_values(path: Path, genre: str, tags: Mapping[str, object] | None = None,
                album_folder: str | None = None) -> dict[str, str | int | None]:
    """The fields of one file: its genre, its names, and the tags read from it."""
    tags = tags or {}
    values: dict[str, str | int | None] = {
        "genre": genre, "album_folder": album_folder, "filename": path.name, "stem": path.stem,
        "ext": path.suffix.lstrip("."),
    }
    for key in TAG_FIELDS:
        values[key] = _tag_value(tags.get(key))
    return values


def album_values(folder: str, genre: str, track_tags: list[Mapping[str, object]]) -> dict[str, str | int | None]:
    """The fields of an album: its genre, its folder's name, and the tags most of its tracks share."""
    values: dict[str, str | int | None] = {"genre": genre, "album_folder": folder, "filename": folder,
                                           "stem": folder, "ext": ""}
    for key in ("artist", "albumartist", "album", "year"):
        seen = [v for t in track_tags if (v := _tag_value(t.get(key))) is not None]
        values[key] = max(set(seen), key=lambda v: (seen.count(v), str(v))) if seen else None  # type: ignore[arg-type]
    for key in ("title", "track", "disc"):
        values[key] = None
    return values


def _tag_value(value: object) -> str | int | None:
    """A tag's value as a template field: text in NFC (tags written on macOS often spell "é" as
    "e" and a combining accent, NFD: the same artist in two spellings would fill two folders that
    look alike), a number as is, anything else None."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    return value if isinstance(value, int) else None

