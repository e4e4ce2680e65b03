"""``genre-daemon model list`` and ``model rollback``: the versions of :mod:`versions`, for a person.

Apart from :mod:`genre_daemon.learning.versions` (the store itself, which the daemon reads every
few seconds) so that each stays one thing; like it, this never imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.errors import ModelError
from genre_daemon.learning.heldout import figures
from genre_daemon.learning.versions import META_FILE, ModelStore, VersionInfo, light_check
from genre_daemon.resources import default_model_dir


def add_model_parser(sub: Any, config_help: str = "config file") -> None:
    """Register ``model list`` and ``model rollback`` on the top-level sub-parsers."""
    p = sub.add_parser("model", help="the model versions the daemon has promoted; roll back to an earlier one")
    actions = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="every model version, oldest first; the active one marked")
    q.add_argument("--config", type=Path, help=config_help)
    q.add_argument("--json", action="store_true", help="one JSON object per version")
    q.set_defaults(func=cmd_model_list)
    q = actions.add_parser("rollback", help="make the version before the active one active "
                                            "(a running daemon switches by itself)")
    q.add_argument("--config", type=Path, help=config_help)
    q.set_defaults(func=cmd_model_rollback)


def cmd_model_list(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """``genre-daemon model list``: the versions, or the shipped model when none was promoted."""
    from genre_daemon.config import load_settings

    settings = load_settings(args.config)
    store = ModelStore(settings.state_dir / "models")
    infos = store.versions()
    if not infos:
        infos = [_shipped_info()]
    _warn_pinned(settings.model, err)
    if args.json:
        for info in infos:
            print(json.dumps(info.to_json(), ensure_ascii=False), file=out)
        return 0
    rows = [("", "name", "version", "created", "labels", "genres", "accuracy, on what music")]
    for i in infos:  # one line a version (scripts read it); every figure names its test music
        rows.append(("*" if i.active else "", i.name if i.path.parent == store.root else "(shipped)",
                     i.version, i.created, str(i.n_labels), ",".join(i.genres),
                     "; ".join(f.text() for f in figures(i.metrics)) or "-"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip(), file=out)
    return 0


def cmd_model_rollback(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """``genre-daemon model rollback``: the previous version becomes active; prints which."""
    from genre_daemon.config import load_settings

    settings = load_settings(args.config)
    store = ModelStore(settings.state_dir / "models")
    if not store.versions():
        raise ModelError(f"{store.root}: no model has been promoted yet (the shipped model is in use); "
                         "there is nothing to roll back to")
    info = store.rollback()
    _warn_pinned(settings.model, err)
    print(f"active now: {info.name} ({info.version}, created {info.created}, "
          f"{len(info.genres)} genres: {', '.join(info.genres)})", file=out)
    return 0


def _shipped_info() -> VersionInfo:
    """The shipped default model as a version (what the daemon uses before any promotion)."""
    path = default_model_dir()
    problem = light_check(path)
    if problem:
        raise ModelError(f"{path}: the shipped model is unusable: {problem}")
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    return VersionInfo(version=str(meta.get("version", "default")), path=path, active=True,
                       created=str(meta.get("created", "")), genres=[str(g) for g in meta["genres"]],
                       metrics=dict(meta.get("metrics") or {}), n_labels=0)


def _warn_pinned(model: Path | None, err: TextIO | None) -> None:
    if model is not None:
        print(f"genre-daemon: note: the config's `model:` pins {model}; the daemon uses that one, "
              "not the versions below (set `model: null` to use them)", file=err or sys.stderr)


__all__ = ["add_model_parser", "cmd_model_list", "cmd_model_rollback"]
