"""A config document into validated :class:`~genre_daemon.config.settings.Settings`.

:func:`load_settings` reads a file (through :mod:`genre_daemon.config.reading`),
:func:`parse_settings` takes an already-loaded document; both validate every key with the
converters of :mod:`genre_daemon.config.values`, refuse unknown keys (suggesting the close
one), and check the folder roles: five different folders, none nested where the daemon would
take its own files again, compared by their real paths so two names for one folder are caught.
:func:`describe` writes resolved settings back as YAML; :func:`missing_folders` lists the
configured folders that do not exist. Nothing here creates or touches a folder.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from genre_daemon.config.reading import read_yaml
from genre_daemon.config.settings import (
    CONFIG_ENV,
    DEFAULT_EXTENSIONS,
    DEFAULT_FOLDERS,
    RETRAIN_KEYS,
    ALBUMS_CHOICES,
    DUPLICATES_CHOICES,
    TAG_MODE_CHOICES,
    TOP_KEYS,
    WEB_KEYS,
    NOTIFY_KEYS,
    NotifySettings,
    RetrainSettings,
    Settings,
    WebSettings,
    default_config_path,
)
from genre_daemon.config.values import (
    Problems,
    boolean,
    extensions,
    folder_mode,
    genre_names,
    listen,
    notify_url,
    number,
    choice,
    on_conflict,
    path_template,
    optional,
    path_converter,
    path_list,
    show,
    whole,
)
from genre_daemon.errors import ConfigError


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
    data = read_yaml(file, label)
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
        "albums": settings.albums,
        "folder_quiet_seconds": settings.folder_quiet_seconds,
        "write_tags": settings.write_tags,
        "path_template": settings.path_template,
        "duplicates": settings.duplicates,
        "genre_names": dict(settings.genre_names),
        "tag_mode": settings.tag_mode,
        "tag_genres": settings.tag_genres,
        "use_existing_genre": settings.use_existing_genre,
        "use_artist_genre": settings.use_artist_genre,
        "folder_mode": f"{settings.folder_mode:04o}",
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
        "notify": {"url": settings.notify.url, "every": settings.notify.every},
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
            f"got {type(data).__name__} {show(data)}"
        )
    problems = Problems(source)
    for key in data:
        if key not in TOP_KEYS:
            problems.unknown(key, TOP_KEYS)

    to_path = path_converter(base_dir, environ)
    defaults_path = path_converter(None, environ)
    folders = {
        key: problems.convert(data, key, to_path, None) if key in data else defaults_path(raw)
        for key, raw in DEFAULT_FOLDERS.items()
    }

    retrain = _parse_retrain(data.get("retrain"), problems, to_path)
    web = _parse_web(data.get("web"), problems)
    notify = _parse_notify(data.get("notify"), problems)
    values = {
        "model": problems.convert(data, "model", optional(to_path), None),
        "extensions": problems.convert(data, "extensions", extensions, DEFAULT_EXTENSIONS),
        "min_confidence": problems.convert(
            data, "min_confidence", number("a number from 0 to 1", lambda x: 0 <= x <= 1), 0.4),
        "settle_seconds": problems.convert(
            data, "settle_seconds", number("a number of seconds >= 0", lambda x: x >= 0), 2.0),
        "rescan_interval": problems.convert(
            data, "rescan_interval", number("a number of seconds > 0", lambda x: x > 0), 300.0),
        "on_conflict": problems.convert(data, "on_conflict", on_conflict, "rename"),
        "workers": problems.convert(data, "workers", whole(1, 32), 1),
        "polling": problems.convert(data, "polling", boolean, False),
        "albums": problems.convert(data, "albums", choice(ALBUMS_CHOICES), "together"),
        "folder_quiet_seconds": problems.convert(
            data, "folder_quiet_seconds", number("a number of seconds >= 0", lambda x: x >= 0), 300.0),
        "write_tags": problems.convert(data, "write_tags", boolean, False),
        "path_template": problems.convert(data, "path_template", path_template, None),
        "duplicates": problems.convert(data, "duplicates", choice(DUPLICATES_CHOICES), "keep"),
        "genre_names": problems.convert(data, "genre_names", genre_names, ()),
        "tag_mode": problems.convert(data, "tag_mode", choice(TAG_MODE_CHOICES), "replace"),
        "tag_genres": problems.convert(data, "tag_genres", whole(1, 10), 1),
        "use_existing_genre": problems.convert(data, "use_existing_genre", boolean, False),
        "use_artist_genre": problems.convert(data, "use_artist_genre", boolean, True),
        "folder_mode": problems.convert(data, "folder_mode", folder_mode, 0o755),
    }
    good_folders = {k: v for k, v in folders.items() if v is not None}
    _check_roles(good_folders, retrain.labelled_dirs, problems)
    if problems.messages:
        raise ConfigError("\n".join(problems.messages))
    return Settings(**folders, **values, retrain=retrain, web=web, notify=notify,
                    source=source_path)


def _parse_retrain(
    section: object, problems: Problems, to_path: Callable[[object], Path]
) -> RetrainSettings:
    """The ``retrain:`` section; absent or empty (``retrain:`` alone) means all defaults."""
    defaults = RetrainSettings()
    section = problems.section(section, "retrain", RETRAIN_KEYS)
    if section is None:
        return defaults
    p = "retrain."
    return RetrainSettings(
        enabled=problems.convert(section, "enabled", boolean, defaults.enabled, p),
        min_new_labels=problems.convert(
            section, "min_new_labels", whole(1), defaults.min_new_labels, p),
        min_interval=problems.convert(
            section, "min_interval", number("a number of seconds >= 0", lambda x: x >= 0),
            defaults.min_interval, p),
        min_per_genre=problems.convert(
            section, "min_per_genre", whole(1), defaults.min_per_genre, p),
        labelled_dirs=problems.convert(
            section, "labelled_dirs", path_list(to_path),
            defaults.labelled_dirs, p),
    )


def _parse_web(section: object, problems: Problems) -> WebSettings:
    """The ``web:`` section; absent or empty means all defaults (off). A listen address that
    is not loopback is refused unless ``allow_remote`` says it is meant."""
    defaults = WebSettings()
    section = problems.section(section, "web", WEB_KEYS)
    if section is None:
        return defaults
    p = "web."
    web = WebSettings(
        enabled=problems.convert(section, "enabled", boolean, defaults.enabled, p),
        listen=problems.convert(section, "listen", listen, defaults.listen, p),
        allow_remote=problems.convert(section, "allow_remote", boolean, defaults.allow_remote, p),
    )
    if not web.loopback and not web.allow_remote:
        problems.add("web.listen", f"{web.listen} is not a loopback address (127.0.0.1, ::1, localhost), so "
                     "other machines could reach the page; set web.allow_remote: true if that is meant")
    return web


def _parse_notify(section: object, problems: Problems) -> NotifySettings:
    """The ``notify:`` section; absent or empty means all defaults (off). ``every`` must be > 0:
    0 would mean a message per file, which no phone should get; a small number does that job."""
    defaults = NotifySettings()
    section = problems.section(section, "notify", NOTIFY_KEYS)
    if section is None:
        return defaults
    p = "notify."
    return NotifySettings(
        url=problems.convert(section, "url", notify_url, defaults.url, p),
        every=problems.convert(
            section, "every", number("a number of seconds > 0, such as 3600", lambda x: x > 0),
            defaults.every, p),
    )


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


def _check_roles(folders: dict[str, Path], labelled: tuple[Path, ...], problems: Problems) -> None:
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
