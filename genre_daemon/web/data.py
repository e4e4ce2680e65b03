"""What the page shows and does, without HTTP: the journal, the folders and the model store.

Every action takes a journal id (a file row for review songs and audio, a move for recent
placements), never a path: the path always comes from the journal. A file is the one a row
describes when it is a regular file (never a symlink) at the row's address with the same inode,
or the same size and nanosecond mtime (a copy across file systems keeps both), inside the library
or the review folder.

Filing a song (from review, or into another genre from Recent) is one :func:`mover.move` into
``library/<genre>/`` with ``on_conflict="rename"`` whatever the config says (a click never
replaces a file). The label scan (``labels.py``) counts it by itself: the journal still holds
the daemon's placement (review or the old genre), and the file is now in another genre folder.
The page notes where it put the file in the journal's ``meta`` table (key ``web.placed.<file
id>``: path, inode, genre, time) so a second click is refused, Recent can show where the file
is, and its audio can still be played. Actions are serialised in-process by one lock; a file
the daemon or the user moves meanwhile makes the move fail cleanly (nothing moved twice, the
source untouched).
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genre_daemon.filing import mover
from genre_daemon.config import Settings
from genre_daemon.errors import GenreDaemonError, MoveError, SourceChangedError
from genre_daemon.filing.journal import FileRow, Journal, JournalError, MoveRow, State
from genre_daemon.learning.labels import genre_name
from genre_daemon.names import safe_component, safe_filename

log = logging.getLogger("genre_daemon.web")

__all__ = ["WebError", "ReviewItem", "RecentItem", "WebData", "check_genre_name", "RECORD_PREFIX"]

RECORD_PREFIX = "web.placed."
StatusProvider = Callable[[], Mapping[str, Any] | None]


class WebError(GenreDaemonError):
    """A request the page refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReviewItem:
    """A song waiting in review: its file row id, name and the daemon's scores."""

    id: int
    name: str
    genre: str | None
    confidence: float | None
    scores: dict[str, float]
    time: float
    model: str | None

    def to_json(self) -> dict[str, Any]:
        """The pinned ``GET /api/review`` object (plus ``time``, ``model`` and ``audio``)."""
        return {"id": self.id, "name": self.name, "genre": self.genre, "confidence": _num(self.confidence),
                "scores": self.scores, "time": self.time,
                "model": self.model, "audio": f"/api/files/{self.id}/audio"}

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` best genres with their scores, best first."""
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass(frozen=True)
class RecentItem:
    """A recent placement and where its file is now."""

    move: int
    file: int
    name: str
    kind: str  # "genre" | "review"
    genre: str | None  # the daemon's choice
    confidence: float | None
    time: float
    undone: bool
    now: str  # "jazz", "review", "back in the inbox", "not found"
    by_you: bool  # filed or corrected through this page
    playable: bool
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """One ``GET /api/recent`` object."""
        return {"move": self.move, "id": self.file, "name": self.name, "kind": self.kind, "genre": self.genre,
                "confidence": _num(self.confidence), "time": self.time, "undone": self.undone,
                "now": self.now, "by_you": self.by_you,
                "audio": f"/api/files/{self.file}/audio" if self.playable else None}


@dataclass(frozen=True)
class _Record:
    """Where this page put a file (journal meta ``web.placed.<file id>``)."""

    path: Path
    dev: int
    ino: int
    size: int
    mtime_ns: int
    genre: str
    time: float

    def to_meta(self) -> str:
        return json.dumps({"path": os.fspath(self.path), "dev": self.dev, "ino": self.ino, "size": self.size,
                           "mtime_ns": self.mtime_ns, "genre": self.genre, "time": self.time})

    @classmethod
    def from_meta(cls, text: str | None) -> _Record | None:
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(Path(d["path"]), int(d["dev"]), int(d["ino"]), int(d["size"]), int(d["mtime_ns"]),
                       str(d["genre"]), float(d["time"]))
        except (ValueError, KeyError, TypeError):
            return None


def check_genre_name(name: object) -> str:
    """``name`` if it is one safe genre folder name (NFC), else :class:`WebError` 422 saying why."""
    if not isinstance(name, str):
        raise WebError(422, "the genre must be given as text, e.g. {\"genre\": \"jazz\"}")
    if not name:
        raise WebError(422, "the genre is empty: click a genre or type one")
    good = genre_name(name)
    if good is None or unicodedata.normalize("NFC", name) != good:
        fixed = safe_component(name, fallback="genre")
        raise WebError(422, f"{_shown(name)} is not one safe folder name (no '/', '\\', control characters, "
                            "leading dots or dashes, trailing dots or spaces, at most 200 bytes); "
                            f"something like {_shown(fixed)} would do")
    return good


class WebData:
    """The page's model of the daemon's state; every method is safe to call from any thread."""

    def __init__(self, settings: Settings, journal: Journal, status_provider: StatusProvider | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.status_provider = status_provider
        self._act = threading.Lock()  # one action at a time: check-then-move stays true
        self._scores_lock = threading.Lock()
        self._scores: dict[int, tuple[dict[str, float], str | None, float]] = {}  # file id -> review move
        self._max_move = 0
        self._rows: list[FileRow] = []
        self._rows_key: tuple[int, int] | None = None
        self._png_lock = threading.Lock()
        self._png: dict[tuple[str, int], bytes] = {}

    # --- review ---------------------------------------------------------------------------------

    def review_items(self) -> list[ReviewItem]:
        """Songs waiting for review, newest first: rows in state review whose file is still at
        its address in the review folder (a file moved or filed since is left out)."""
        rows = self._review_rows()
        scores = self._review_scores()
        review = os.fspath(self.settings.review_dir)
        items: list[ReviewItem] = []
        for row in rows:
            where = row.destination
            if where is None or not _inside(where, review) or not _is_file_of(where, row):
                continue
            sc, model, when = scores.get(row.id, ({}, row.model_version, row.updated))
            items.append(ReviewItem(row.id, os.path.basename(where), row.genre, row.confidence, sc, when, model))
        return items

    def _review_rows(self) -> list[FileRow]:
        """The journal's rows in state review, newest first, cached: the set changes only when a
        move is recorded (a new newest move id) or one is undone (fewer review rows), so the
        count and the newest move id together say whether the cached rows are still the rows."""
        newest = self.journal.history(1)
        key = (self.journal.counts()[State.REVIEW.value], newest[0].id if newest else 0)
        with self._scores_lock:
            if self._rows_key == key:
                return self._rows
        rows = self.journal.in_states(State.REVIEW)
        rows.reverse()
        with self._scores_lock:
            self._rows, self._rows_key = rows, key
        return rows

    def _review_scores(self) -> dict[int, tuple[dict[str, float], str | None, float]]:
        """Scores of every review move, by file id, read incrementally from the journal's history
        (moves are only ever appended; the first call reads them all)."""
        with self._scores_lock:
            limit = 64
            while True:
                batch = self.journal.history(None if self._max_move == 0 else limit)
                if self._max_move == 0 or len(batch) < limit or batch[-1].id <= self._max_move:
                    break
                limit *= 4
            for m in batch:
                if m.id > self._max_move and m.kind == "review":
                    self._scores[m.file_id] = (m.scores, m.model_version, m.time)
            if batch:
                self._max_move = max(self._max_move, batch[0].id)
            return self._scores

    def file_review(self, file_id: int, genre: object) -> dict[str, Any]:
        """File the review song ``file_id`` into ``library/<genre>/``; returns what was done."""
        with self._act:
            row = self.journal.get(file_id)
            if row is None:
                raise WebError(404, f"no song with id {file_id}")
            name = check_genre_name(genre)
            record = self._record(file_id)
            if record is not None:
                raise WebError(409, f"song {file_id} was already filed into {_shown(record.genre)} "
                                    f"({record.path.name}); nothing moved")
            if row.state is not State.REVIEW:
                what = {State.MOVED: f"placed in {_shown(row.genre or '?')} by the daemon (correct it under Recent)",
                        State.QUARANTINED: "in quarantine"}.get(row.state, f"{row.state.value}")
                raise WebError(409, f"song {file_id} is not waiting for review: it is {what}; nothing moved")
            source = Path(row.destination or "")
            if not row.destination or not _inside(source, self.settings.review_dir) or not _is_file_of(source, row):
                raise WebError(410, f"{_shown(source.name)} is no longer in the review folder (moved or deleted "
                                    "outside this page); nothing moved")
            return self._file_into(row, source, name, came_from="review")

    # --- recent ---------------------------------------------------------------------------------

    def recent(self, limit: int = 50) -> list[RecentItem]:
        """The newest ``limit`` placements into a genre folder or review, newest first."""
        limit = max(1, min(int(limit), 1000))
        want = limit * 2 + 16
        while True:
            moves = self.journal.history(want)
            chosen = [m for m in moves if m.kind in ("genre", "review")][:limit]
            if len(chosen) == limit or len(moves) < want:
                break
            want *= 4
        return [self._recent_item(m) for m in chosen]

    def _recent_item(self, m: MoveRow) -> RecentItem:
        row = self.journal.get(m.file_id)
        record = self._record(m.file_id)
        name = Path(m.destination).name
        if m.undone or row is None:
            now, by_you, where = "back in the inbox", False, None
        else:
            where = self._locate(row, record)
            by_you = record is not None and where is not None and where == record.path
            if where is None:
                now = "not found"
            elif _inside(where, self.settings.review_dir):
                now = "review"
            else:
                now = _genre_of(where, self.settings.library)
            if where is not None:
                name = where.name
        return RecentItem(m.id, m.file_id, name, m.kind, m.genre, m.confidence, m.time, m.undone, now, by_you,
                          where is not None, dict(m.scores))

    def correct(self, move_id: int, genre: object) -> dict[str, Any]:
        """Move the file of placement ``move_id`` into ``library/<genre>/`` ("wrong genre")."""
        with self._act:
            move = self.journal.move(move_id)
            if move is None or move.kind not in ("genre", "review"):
                raise WebError(404, f"no placement with id {move_id}")
            name = check_genre_name(genre)
            if move.undone:
                raise WebError(409, f"placement {move_id} was undone: the file is back in the inbox; nothing moved")
            row = self.journal.get(move.file_id)
            if row is None or row.state not in (State.MOVED, State.REVIEW):
                raise WebError(409, f"placement {move_id} is no longer the file's last move; nothing moved")
            where = self._locate(row, self._record(row.id))
            if where is None:
                raise WebError(410, f"{_shown(Path(move.destination).name)} is not where the daemon or this page "
                                    "put it (moved or deleted by hand?); nothing moved")
            in_review = _inside(where, self.settings.review_dir)
            came_from = "review" if in_review else _genre_of(where, self.settings.library)
            if not in_review and came_from == name:
                raise WebError(409, f"{_shown(where.name)} is already in {_shown(name)}; nothing moved")
            return self._file_into(row, where, name, came_from=came_from)

    def undo(self, move_id: int) -> dict[str, Any]:
        """Put the file of placement ``move_id`` back where it came from (``undo.py``)."""
        from genre_daemon.filing.undo import Undoer

        with self._act:
            move = self.journal.move(move_id)
            if move is None:
                raise WebError(404, f"no placement with id {move_id}")
            if move.undone:
                raise WebError(409, f"placement {move_id} was already undone; nothing moved")
            result = Undoer(self.journal, self.settings).undo(move)
            if result.error is not None or result.restored is None:
                raise WebError(409, f"cannot undo {result.error}")
            self._forget(move.file_id)
            log.info("web: undid move %d: %s is back at %s", move_id, Path(move.destination).name, result.restored)
            return {"move": move_id, "id": move.file_id, "restored": _relative(result.restored, self.settings.inbox),
                    "note": result.note}

    # --- files ----------------------------------------------------------------------------------

    def audio_path(self, file_id: int) -> tuple[Path, os.stat_result]:
        """The file of row ``file_id`` (in the library or review) and its ``lstat``; WebError 404."""
        row = self.journal.get(file_id)
        if row is None:
            raise WebError(404, f"no song with id {file_id}")
        where = self._locate(row, self._record(file_id)) if row.state in (State.MOVED, State.REVIEW) else None
        if where is None:
            raise WebError(404, f"song {file_id} is not in the library or the review folder")
        try:
            st = os.lstat(where)
        except OSError:
            raise WebError(404, f"song {file_id} is not in the library or the review folder") from None
        return where, st

    def known_genres(self) -> list[str]:
        """Genre folders of the library and genres of the active model, sorted, for the pickers."""
        names: set[str] = set()
        skip = self._not_genres()
        try:
            with os.scandir(self.settings.library) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False) and _real(Path(entry.path)) not in skip:
                        g = genre_name(entry.name)
                        if g is not None:
                            names.add(g)
        except OSError:
            pass
        names.update(self._model_genres())
        return sorted(names, key=lambda g: (g.casefold(), g))

    # --- status and models ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts per state, the daemon's queue and model, retrain progress, the last gate decision."""
        from genre_daemon.learning.retrain import read_progress

        running = dict(self.status_provider() or {}) if self.status_provider is not None else {}
        try:
            counts = self.journal.counts()
        except JournalError as exc:
            counts, running["journal_error"] = {}, str(exc)
        progress = read_progress(self.settings)
        active = self._active_info()
        gate: dict[str, Any] | None = None
        if progress and progress.get("state") in ("done", "failed"):
            gate = {k: progress.get(k) for k in ("promoted", "reason", "candidate", "active", "labels",
                                                  "new_labels", "version", "finished", "waiting_genres")
                    if k in progress}
        return {
            "running": bool(running.get("pid")),
            "pid": running.get("pid"),
            "uptime": round(time.time() - float(running["started"]), 1) if running.get("started") else None,
            "queue_depth": running.get("queue_depth", 0),
            "waiting": running.get("waiting"),
            "last_file": running.get("last_file"),
            "new_labels": running.get("new_labels"),
            "retraining": running.get("retraining", False),
            "model_version": running.get("model_version") or (active or {}).get("version"),
            "counts": counts,
            "in_review": len(self.review_items()),
            "retrain": progress,
            "last_gate": gate,
            "active_model": active,
        }

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
            raise WebError(404, f"no model version {_shown(name)}")
        found = find_confusion(entry["metrics"])
        if found is None:
            raise WebError(404, f"model {name} has no stored confusion matrix")
        key = (name, hash(json.dumps(found[1], sort_keys=True, default=str)))
        with self._png_lock:
            if key not in self._png:
                self._png[key] = confusion_png(found[1], f"{entry['version']}: {found[0]}")
            return self._png[key]

    # --- internals ------------------------------------------------------------------------------

    def _file_into(self, row: FileRow, source: Path, genre: str, *, came_from: str) -> dict[str, Any]:
        """Move ``source`` (row's file) into ``library/<genre>/`` and note it in the journal."""
        s = self.settings
        folder = s.library / genre
        if _real(folder) in self._not_genres():
            raise WebError(422, f"{_shown(genre)} is not a genre folder: that name is the "
                                f"{self._role_of(folder)} folder; nothing moved")
        twin = self._case_twin(genre)
        if twin is not None:
            raise WebError(409, f"a genre {_shown(twin)} already exists; names that differ only by case are one "
                                f"genre: use {_shown(twin)}; nothing moved")
        dest = folder / safe_filename(source.name)
        try:
            st = os.lstat(source)
            result = mover.move(source, dest, "rename", root=s.library, expect=mover.signature(st))
        except FileNotFoundError:
            raise WebError(410, f"{_shown(source.name)} vanished before it could be moved; nothing moved") from None
        except SourceChangedError as exc:
            raise WebError(409, f"{_shown(source.name)} changed while it was being moved, so it was left where "
                                f"it is: {exc}") from None
        except MoveError as exc:
            code = getattr(exc, "errno", None)
            if not os.path.lexists(source):
                raise WebError(410, f"{_shown(source.name)} vanished before it could be moved; nothing moved") from None
            raise WebError(507 if code in (28, 122) else 409, f"{exc}; the file stays where it was") from None
        assert result.destination is not None
        final = result.destination
        fst = os.lstat(final)
        record = _Record(final, fst.st_dev, fst.st_ino, fst.st_size, fst.st_mtime_ns, genre, time.time())
        try:
            self.journal.set_meta(RECORD_PREFIX + str(row.id), record.to_meta())
        except JournalError as exc:  # the move is done and counts as a label all the same
            log.warning("web: %s filed into %s, but the journal could not note it: %s", final.name, genre, exc)
        log.info("web: %s (%s) filed into %s by the user", final.name, came_from, genre)
        return {"id": row.id, "name": final.name, "genre": genre, "from": came_from,
                "destination": _relative(final, s.library), "renamed": final.name != source.name}

    def _record(self, file_id: int) -> _Record | None:
        return _Record.from_meta(self.journal.get_meta(RECORD_PREFIX + str(file_id)))

    def _forget(self, file_id: int) -> None:
        try:
            self.journal.delete_meta(RECORD_PREFIX + str(file_id))
        except JournalError as exc:
            log.warning("web: cannot forget the note on journal row %d: %s", file_id, exc)

    def _locate(self, row: FileRow, record: _Record | None) -> Path | None:
        """Where row's file is now: where this page put it, else the journal's address."""
        if record is not None:
            st = _lstat_regular(record.path)
            same = st is not None and ((st.st_dev, st.st_ino) == (record.dev, record.ino)
                                       or (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns))
            return record.path if same and _inside(record.path, self.settings.library) else None
        if row.destination is None or row.state not in (State.MOVED, State.REVIEW):
            return None
        where = Path(row.destination)
        root = self.settings.review_dir if row.state is State.REVIEW else self.settings.library
        return where if _inside(where, root) and _is_file_of(where, row) else None

    def _not_genres(self) -> set[Path]:
        s = self.settings
        return {_real(p) for p in (s.review_dir, s.quarantine_dir, s.state_dir, s.inbox, *s.retrain.labelled_dirs)}

    def _role_of(self, folder: Path) -> str:
        s = self.settings
        real = _real(folder)
        for role, path in (("review", s.review_dir), ("quarantine", s.quarantine_dir), ("state", s.state_dir),
                           ("inbox", s.inbox)):
            if _real(path) == real:
                return role
        return "labelled-data"

    def _case_twin(self, genre: str) -> str | None:
        key = genre.casefold()
        return next((g for g in self.known_genres() if g != genre and g.casefold() == key), None)

    def _model_genres(self) -> list[str]:
        active = self._active_info()
        return list(active.get("genres", [])) if active else []

    def _active_info(self) -> dict[str, Any] | None:
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
        from genre_daemon.web.plots import find_confusion

        number = int(name[1:]) if name[:1] == "v" and name[1:].isdigit() else 0
        clean = _finite(dict(metrics))
        headline = None
        for value in (clean.get("held_out_labels"), (clean.get("validation") or {}).get("accuracy")
                      if isinstance(clean.get("validation"), dict) else None):
            if isinstance(value, (int, float)):
                headline = float(value)
                break
        return {"name": name, "number": number, "version": version, "active": active, "created": created,
                "genres": list(genres), "n_labels": n_labels, "accuracy": headline, "metrics": clean,
                "has_confusion": find_confusion(clean) is not None}


# --- small helpers --------------------------------------------------------------------------------


def model_dir(settings: Settings) -> Path:
    """The model the daemon uses (:func:`genre_daemon.learning.versions.resolve_model_dir`)."""
    from genre_daemon.learning.versions import resolve_model_dir

    return resolve_model_dir(settings)


def daemon_status(settings: Settings) -> dict[str, Any] | None:
    """The running daemon's ``daemon.json`` (:func:`genre_daemon.daemon.service.read_status`, without
    importing the service), or None when no daemon runs for this state_dir."""
    try:
        data = json.loads((settings.state_dir / "daemon.json").read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _shown(text: str) -> str:
    """A name for a message: quoted, control characters escaped, shortened."""
    r = repr(text)
    return r if len(r) <= 80 else r[:77] + "...'"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """``path`` lies lexically below ``root``, with no ``..`` or ``.`` component (string work
    only: it runs once per review row per request)."""
    p, r = os.fspath(path), os.fspath(root).rstrip(os.sep)
    if not p.startswith(r + os.sep):
        return False
    rest = p[len(r) + 1:]
    return bool(rest) and all(part not in ("", ".", "..") for part in rest.split(os.sep))


def _relative(path: Path, root: Path) -> str:
    try:
        return os.fspath(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def _genre_of(path: Path, library: Path) -> str:
    """The genre folder (first component below the library) a library file is in."""
    try:
        return Path(path).relative_to(library).parts[0]
    except (ValueError, IndexError):
        return Path(path).parent.name


def _lstat_regular(path: str | os.PathLike[str]) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _is_file_of(path: str | os.PathLike[str], row: FileRow) -> bool:
    """A regular file at ``path`` that is row's file: the same inode (tags edited in place), or
    the same size and ns mtime (moved across file systems)."""
    st = _lstat_regular(path)
    if st is None:
        return False
    ident = row.identity
    return (st.st_dev, st.st_ino) == (ident.dev, ident.ino) or (st.st_size, st.st_mtime_ns) == (ident.size, ident.mtime_ns)
