"""``check-config``: validate a config file and show every resolved setting, with where
path_template puts a sample file and album."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_parsers", "cmd_check_config"]


def cmd_check_config(args: argparse.Namespace, out: TextIO) -> int:
    """Validate the config and print every resolved setting; a folder that does not exist is a
    warning on stderr (a typo would otherwise mean a new, empty folder), not a failure."""
    from genre_daemon.config import DEFAULT_FOLDERS, default_config_path, describe, load_settings, missing_folders

    settings = load_settings(args.path)
    print(f"{settings.source or args.path or default_config_path()}: OK", file=out)
    for key, path in missing_folders(settings):
        shown = str(path) if str(path).isprintable() else repr(str(path))
        then = ("the daemon will create it at start" if key in DEFAULT_FOLDERS
                else "no labels are read from it until it exists")
        print(f"warning: {key} {shown} does not exist; {then} \N{EM DASH} check the path", file=sys.stderr)
    print(describe(settings), file=out)
    for line in _template_example(settings.path_template, args.sample):
        print(line, file=out)
    return 0


SAMPLE_TAGS: dict[str, object] = {"artist": "Miles Davis", "albumartist": "Miles Davis", "album": "Kind of Blue",
                                  "title": "So What", "track": 1, "disc": 1, "year": 1959}


def _template_example(template: str | None, sample: str | None) -> list[str]:
    """Comment lines showing where path_template puts a sample file and a sample album: the
    file given with --sample (its own tags), else a made-up jazz track."""
    from genre_daemon.path_template import Template, album_values, file_values

    if sample:
        from genre_daemon.tags import read_tags

        path = Path(sample)
        tags: dict[str, object] = dict(read_tags(path).to_json())
        genre = str(tags.get("genre") or "jazz")
    else:
        path, tags, genre = Path("01 So What.flac"), SAMPLE_TAGS, "jazz"
    t = Template.parse(template)
    album_folder = path.parent.name if sample and path.parent.name else "Kind of Blue (1959)"
    loose = t.file_path(file_values(path, genre, tags), path.suffix)
    album = t.album_path(album_values(album_folder, genre, [tags]))
    return [
        f"# path_template {t.text!r}, for {path.name} ({genre}; tags: "
        + (", ".join(f"{k}={v}" for k, v in tags.items() if k != "genre") or "none") + "):",
        f"#   a loose file goes to  <library>/{loose}",
        f"#   its album folder to   <library>/{album}/  (the album's files keep their names and layout)",
    ]


def add_parsers(sub: Any, config_help: str) -> None:
    """The parser of check-config."""
    p = sub.add_parser(
        "check-config", help="validate a config file and show the resolved settings",
        description="Validate a config file and print every resolved setting. Exit status 0 when it can be used "
                    "(folders that do not exist yet are warned about on stderr: the daemon would create them), "
                    "2 when it cannot, or when PATH does not exist (each problem on stderr, naming the file and "
                    "the key).",
        epilog="example: genre-daemon check-config ~/.config/genre-daemon/config.yaml --sample song.flac")
    p.add_argument("path", nargs="?", type=Path, help=config_help)
    p.add_argument("--sample", metavar="AUDIO", help="show where path_template puts this file (its own tags) "
                   "and its folder as an album; default: a made-up jazz track")
    p.set_defaults(func=cmd_check_config)
