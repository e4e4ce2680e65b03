"""The config file: YAML (``yaml.safe_load``, refusing duplicate keys) into typed, validated,
frozen :class:`Settings`.

Every refusal is a :class:`~genre_daemon.errors.ConfigError` whose message names the file, the
key (dotted: ``retrain.min_per_genre``), the bad value and what is expected, one line per
problem, so ``genre-daemon check-config`` can show them all at once. Paths have ``~`` and
environment variables expanded and are made absolute (a relative path is relative to the config
file's folder); symlinks are kept as written but the folder roles are compared by their real
paths, so two names for one folder are caught. Nothing here creates or touches a folder.

This module is the face: callers import from ``genre_daemon.config`` only. Behind it, lowest first:

- :mod:`~genre_daemon.config.settings`: the records (:class:`Settings`, :class:`RetrainSettings`,
  :class:`WebSettings`, :class:`NotifySettings`), their defaults, ``DEFAULT_FOLDERS``, :func:`default_config_path`;
- :mod:`~genre_daemon.config.reading`: a file's YAML, read safely (duplicate keys refused, every
  file or syntax error a ConfigError naming the file and line);
- :mod:`~genre_daemon.config.values`: the value converters and the problem collector;
- :mod:`~genre_daemon.config.parsing`: a document into Settings (:func:`load_settings`,
  :func:`parse_settings`): every key validated, the folder roles checked; :func:`describe`
  and :func:`missing_folders`.

Adding a key (the names are pinned in DESIGN.md, "Config"):

1. ``settings.py``: a field with its default on :class:`Settings` (a top-level key) or on the
   section's record; the field name is the key, so ``TOP_KEYS`` / ``RETRAIN_KEYS`` /
   ``WEB_KEYS`` stop calling it unknown. A new section (``albums:``) is a new frozen record
   there, a field of that type on Settings, and its own ``*_KEYS`` tuple.
2. ``parsing.py``: convert it: a top-level key in ``_parse`` (the ``values`` dict), a section key
   in that section's ``_parse_<section>``; a new section gets its ``_parse_<section>``, built
   like ``_parse_web`` (``problems.section`` refuses a non-mapping and reports unknown keys). Then add it to :func:`describe`, so ``check-config`` shows it and its
   output still reads back to the same settings.
3. ``values.py``: only if no converter there fits (``whole``, ``number``, ``boolean``,
   ``path_converter``, ``path_list``, ``optional``, a fixed choice like ``on_conflict``), a new
   one raising :class:`~genre_daemon.config.values.BadValue` with what is expected.
4. Here: re-export a new record if callers need it; and document the key in config.example.yaml.
"""

from __future__ import annotations

from genre_daemon.config.parsing import describe, load_settings, missing_folders, parse_settings
from genre_daemon.config.settings import (
    CONFIG_ENV,
    DEFAULT_EXTENSIONS,
    DEFAULT_FOLDERS,
    NotifySettings,
    RetrainSettings,
    Settings,
    WebSettings,
    default_config_path,
    split_listen,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_EXTENSIONS",
    "DEFAULT_FOLDERS",
    "NotifySettings",
    "RetrainSettings",
    "Settings",
    "WebSettings",
    "default_config_path",
    "describe",
    "load_settings",
    "missing_folders",
    "parse_settings",
    "split_listen",
]
