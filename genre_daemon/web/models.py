"""The model versions the page shows: each version's metrics, which one is active, rolling
back to the one before, and the confusion-matrix plots drawn from the stored metrics."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.errors import GenreDaemonError
from genre_daemon.web.placing import WebError, shown

log = logging.getLogger("genre_daemon.web")

__all__ = ["ModelViews", "model_dir"]


class ModelViews:
    """The page's view of the model store; a rollback runs under the caller's action lock."""

    def __init__(self, settings: Settings, act: threading.Lock) -> None:
        self.settings = settings
        self._act = act
        self._png_lock = threading.Lock()
        self._png: dict[tuple[str, int], bytes] = {}

    def models(self) -> dict[str, Any]:
        """Every model version (or the shipped model) with its metrics; which one is active."""
        from genre_daemon.learning.versions import ModelStore

        store = ModelStore(self.settings.state_dir / "models")
        infos = store.versions()
        out = [self._version_json(i.name, i.version, i.active, i.created, i.genres, i.metrics, i.n_labels)
               for i in infos]
        if not out:
            shipped = self._shipped()
            if shipped is not None:
                out.append(shipped)
        active = next((v for v in out if v["active"]), None)
        numbered = [v for v in out if v["name"] != "shipped"]
        can_rollback = active is not None and any(v["number"] < active.get("number", 0) for v in numbered)
        return {"versions": out, "active": active["name"] if active else None, "can_rollback": can_rollback,
                "pinned": None if self.settings.model is None else os.fspath(self.settings.model)}

    def rollback(self) -> dict[str, Any]:
        """The version before the active one becomes active (a running daemon switches by itself)."""
        from genre_daemon.errors import ModelError
        from genre_daemon.learning.versions import ModelStore

        with self._act:
            store = ModelStore(self.settings.state_dir / "models")
            if not store.versions():
                raise WebError(409, "no model has been promoted yet (the shipped model is in use); "
                                    "there is nothing to roll back to")
            try:
                info = store.rollback()
            except ModelError as exc:
                raise WebError(409, str(exc)) from None
        note = (f"the config's model: pins {self.settings.model}; the daemon keeps using that one"
                if self.settings.model is not None else None)
        log.info("web: rolled back to %s (%s)", info.name, info.version)
        return {"active": info.name, "version": info.version, "note": note}

    def confusion_png(self, name: str) -> bytes:
        """The confusion matrix of version ``name`` (``vNNNN`` or ``shipped``) as a PNG, drawn from
        the held-out metrics stored with the model; WebError 404 when it has none."""
        from genre_daemon.web.plots import confusion_png, find_confusion

        entry = next((v for v in self.models()["versions"] if v["name"] == name), None)
        if entry is None:
            raise WebError(404, f"no model version {shown(name)}")
        found = find_confusion(entry["metrics"])
        if found is None:
            raise WebError(404, f"model {name} has no stored confusion matrix")
        key = (name, hash(json.dumps(found[1], sort_keys=True, default=str)))
        with self._png_lock:
            if key not in self._png:
                self._png[key] = confusion_png(found[1], f"{entry['version']}: {found[0]}")
            return self._png[key]

    def model_genres(self) -> list[str]:
        active = self.active_info()
        return list(active.get("genres", [])) if active else []

    def active_info(self) -> dict[str, Any] | None:
        try:
            models = self.models()
        except (GenreDaemonError, OSError) as exc:
            log.debug("web: cannot read the model versions: %s", exc)
            return None
        return next((v for v in models["versions"] if v["active"]), None)

    def _shipped(self) -> dict[str, Any] | None:
        path = model_dir(self.settings)
        try:
            meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        name = "shipped" if self.settings.model is None else "pinned"
        return self._version_json(name, str(meta.get("version", "default")), True, str(meta.get("created", "")),
                                  [str(g) for g in meta.get("genres", [])], metrics, 0)

    @staticmethod
    def _version_json(name: str, version: str, active: bool, created: str, genres: list[str],
                      metrics: Mapping[str, Any], n_labels: int) -> dict[str, Any]:
        from genre_daemon.learning.heldout import figures
        from genre_daemon.learning.versions import finite_json
        from genre_daemon.web.plots import find_confusion

        number = int(name[1:]) if name[:1] == "v" and name[1:].isdigit() else 0
        clean = finite_json(dict(metrics))
        shown = figures(clean)  # each accuracy with the music it was measured on
        return {"name": name, "number": number, "version": version, "active": active, "created": created,
                "genres": list(genres), "n_labels": n_labels, "accuracy": shown[0].accuracy if shown else None,
                "figures": [f.to_json() for f in shown], "metrics": clean,
                "has_confusion": find_confusion(clean) is not None}



# --- small helpers --------------------------------------------------------------------------------


def model_dir(settings: Settings) -> Path:
    """The model the daemon uses (:func:`genre_daemon.learning.versions.resolve_model_dir`)."""
    from genre_daemon.learning.versions import resolve_model_dir

    return resolve_model_dir(settings)
