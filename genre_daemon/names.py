"""Names made harmless: any genre or file name turned into ONE safe path component.

Pure functions of strings (nothing touches the disk), low in the package so that the mover, the
model's files and the label scan share one policy without importing each other.
"""

from __future__ import annotations

import unicodedata

__all__ = ["NAME_MAX", "cut_bytes", "nbytes", "safe_component", "safe_filename", "split_suffix"]

# Longest file name most filesystems take (ext4, xfs, btrfs, tmpfs: 255 bytes).
NAME_MAX = 255
# A suffix longer than this is not an extension worth keeping when a name is shortened.
_MAX_SUFFIX_BYTES = 16
# Reserved device names on Windows/SMB: a library on a share must not contain them.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
)
# Bidirectional overrides can make "mp3.exe" display as "exe.mp3": never keep them in a name.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def safe_component(
    name: str, *, max_bytes: int = 200, fallback: str = "unknown", normalize: bool = True
) -> str:
    """``name`` made into ONE harmless path component (a genre folder or a file name).

    Unicode is kept (NFC with ``normalize``; as given without: see :func:`safe_filename`); ``/``, ``\\``, NUL, control, line-separator, lone-surrogate and bidi
    override characters become ``_``; leading dots (hidden), dashes (read as options) and spaces
    go, as do trailing dots and spaces (SMB and Windows drop them); Windows device names get a
    ``_`` (``con`` -> ``con_``); the result is cut on a character boundary to ``max_bytes`` of
    UTF-8, keeping a short extension. What is left empty becomes ``fallback``.
    """
    if max_bytes < 2 * _MAX_SUFFIX_BYTES:
        raise ValueError(f"max_bytes must be at least {2 * _MAX_SUFFIX_BYTES}, got {max_bytes}")
    text = unicodedata.normalize("NFC", name) if normalize else name
    text = "".join("_" if _unsafe_char(c) else c for c in text)
    text = _trim(text)
    stem, dot, rest = text.partition(".")
    if stem.rstrip(" ").upper() in _RESERVED:
        text = stem + "_" + dot + rest
    text = _trim(_fit(text, max_bytes))
    if text:
        return text
    if fallback != _trim(fallback) or not fallback or any(_unsafe_char(c) for c in fallback):
        raise ValueError(f"fallback {fallback!r} is not a safe path component")
    return fallback



def safe_filename(name: str) -> str:
    """A file's name in the library: exactly as it was when it is already one safe component
    (NFD stays NFD, a 255-byte name stays whole: both are legal, and a silent rename would
    surprise, or clash with the other spelling), otherwise made safe as :func:`safe_component`
    does, within 255 bytes. Only a ``(2)`` suffix added on a clash ever shortens a name."""
    return safe_component(name, max_bytes=NAME_MAX, normalize=False)



def _unsafe_char(c: str) -> bool:
    """Whether ``c`` must not appear in a path component."""
    return c in "/\\" or c in _BIDI or unicodedata.category(c) in _UNSAFE_CATEGORIES



def _trim(text: str) -> str:
    """Strip leading dots, dashes and spaces, and trailing dots and spaces."""
    return text.lstrip(". -").rstrip(". ")



def split_suffix(name: str) -> tuple[str, str]:
    """(stem, extension) with the extension kept only when short and the stem not empty."""
    i = name.rfind(".")
    if i > 0 and nbytes(name[i:]) <= _MAX_SUFFIX_BYTES:
        return name[:i], name[i:]
    return name, ""



def nbytes(text: str) -> int:
    """Length of ``text`` as a file name on disk (UTF-8; undecodable bytes count as one)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))



def cut_bytes(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, on a character boundary."""
    if nbytes(text) <= max_bytes:
        return text
    used = 0
    for i, c in enumerate(text):
        used += nbytes(c)
        if used > max_bytes:
            return text[:i]
    return text



def _fit(text: str, max_bytes: int) -> str:
    """``text`` within ``max_bytes``, shortening the stem and keeping a short extension."""
    if nbytes(text) <= max_bytes:
        return text
    stem, suffix = split_suffix(text)
    stem = cut_bytes(stem, max_bytes - nbytes(suffix)).rstrip(". ")
    return stem + suffix if stem else cut_bytes(text, max_bytes)
