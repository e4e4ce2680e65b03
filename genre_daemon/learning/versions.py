"""Model versions: every promoted model is kept under ``state_dir/models``; one pointer says which
one is active.

Layout::

    models/
      v0001/            the shipped model, copied in by seed_default()
      v0002/            model.json, weights.safetensors [, rehearsal.safetensors], version.json
      current -> v0002  a relative symlink, switched with one os.replace()
      .candidate-*      a candidate being written (by the trainer); never pointed at
      .lock             serialises promote/activate/rollback between processes

A version directory is complete before it gets its ``vNNNN`` name (rename is the commit), and
``current`` only ever changes by an atomic rename of a fresh symlink over it, so a crash at any
moment leaves ``current`` on a complete version. A crash between the two leaves a complete,
inactive version, listed like any other. Version directories are never changed afterwards.
``version.json`` beside the model records what the model file cannot know: when it was promoted,
from how many labels, and any metrics of the promotion (the gate's numbers).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from genre_daemon.errors import ModelError
from genre_daemon.resources import default_model_dir

# The file names of a model directory (as in genre_daemon.model.files, which is not imported here so
# that listing versions and switching the pointer never import torch).
META_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
MODEL_FORMAT = 3  # genre_daemon.model.files.FORMAT_VERSION (tests/learning/test_versions.py checks they agree)
READABLE_FORMATS = (2, 3)  # genre_daemon.model.files.READABLE_FORMATS: round 2's models are still served

log = logging.getLogger("genre_daemon.learning.versions")

CURRENT = "current"
SIDECAR = "version.json"
LOCK = ".lock"
CANDIDATE_PREFIX = ".candidate-"
_LINK_PREFIX = ".current-"
_VERSION_RE = re.compile(r"v(\d{4,})")

Hook = Callable[[str], None]


def _no_hook(step: str) -> None:
    """The default hook: do nothing (tests SIGKILL a child process here)."""


@dataclass(frozen=True)
class VersionInfo:
    """One version directory as ``model list`` shows it."""

    version: str  # the model's own version string (model.json), as status/history show it
    path: Path  # the version directory, e.g. <state_dir>/models/v0003
    active: bool
    created: str  # when the model was trained (model.json "created")
    genres: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    n_labels: int = 0

    @property
    def name(self) -> str:
        """The directory name, ``v0003`` (what :meth:`ModelStore.activate` takes)."""
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        """The pinned keys of ``model list --json``; non-finite numbers become ``null``."""
        return {"version": self.version, "active": self.active, "created": self.created,
                "genres": list(self.genres), "metrics": finite_json(self.metrics), "n_labels": self.n_labels}


class ModelStore:
    """The versions under ``root`` (``state_dir / "models"``) and the ``current`` pointer.

    Reading (:meth:`versions`, :meth:`active`, :meth:`active_dir`) creates nothing and takes no
    lock: the pointer is always switched atomically. Writing takes ``root/.lock`` (``flock``), so
    a ``model rollback`` from the shell and a promotion in the daemon cannot interleave.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- reading --------------------------------------------------------------------------------

    def versions(self) -> list[VersionInfo]:
        """Every complete version, oldest first; malformed or symlinked ones skipped with a warning."""
        active = self._pointer()
        return [info for _, name in self._numbered() if (info := self._info(name, name == active)) is not None]

    def active(self) -> VersionInfo | None:
        """The version ``current`` points at, or ``None`` (no pointer, or it points at nothing usable)."""
        name = self._pointer()
        return None if name is None else self._info(name, True)

    def active_dir(self) -> Path | None:
        """The directory the daemon loads (``root/vNNNN``), or ``None``. Cheap: one readlink."""
        info = self.active()
        return None if info is None else info.path

    def find(self, name: str) -> VersionInfo:
        """A version by directory name (``v0003``) or by its model version string."""
        infos = self.versions()
        matches = [i for i in infos if i.name == name] or [i for i in infos if i.version == name]
        if len(matches) != 1:
            known = ", ".join(f"{i.name} ({i.version})" for i in infos) or "none"
            why = "no such version" if not matches else "ambiguous version name"
            raise ModelError(f"{self.root}: {why}: {name!r}; versions: {known}")
        return matches[0]

    # --- writing --------------------------------------------------------------------------------

    def new_candidate(self) -> Path:
        """A fresh, empty ``root/.candidate-<pid>-XXXX`` to write a candidate model into; the pid
        lets :meth:`clean` leave alone a candidate that a live process is still writing."""
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{CANDIDATE_PREFIX}{os.getpid()}-", dir=self.root))

    def promote(self, candidate: Path, *, n_labels: int = 0, metrics: Mapping[str, Any] | None = None,
                hook: Hook | None = None) -> VersionInfo:
        """Make the complete model directory ``candidate`` the next version and activate it.

        A candidate under ``root`` is renamed into place (and so consumed); one elsewhere is
        copied in first (and left alone). The model is loaded once to prove it works. Steps,
        each reported to ``hook``: ``copied`` (only when copying), ``prepared`` (version.json
        written, everything fsynced), ``renamed`` (now ``vNNNN``), ``linked`` (a temporary
        symlink exists), ``switched`` (``current`` points at it). ``metrics`` (e.g. the gate's
        numbers) are kept in version.json and shown by ``model list``.
        """
        candidate = Path(candidate)
        with self._locked():
            info = self._promote(candidate, n_labels, metrics, hook or _no_hook)
        log.info("model %s (%s) promoted and active, from %d labels", info.version, info.name, n_labels)
        return info

    def activate(self, version_dir_name: str, *, hook: Hook | None = None) -> VersionInfo:
        """Point ``current`` at an existing version (by directory name or model version), atomically."""
        with self._locked():
            info = self._activate(version_dir_name, hook or _no_hook)
        log.info("model %s (%s) is active", info.version, info.name)
        return info

    def rollback(self) -> VersionInfo:
        """Make the version before the active one (by number) active; ModelError if there is none."""
        with self._locked():
            active = self._pointer()
            infos = self.versions()
            if active is None or not any(i.name == active for i in infos):
                raise ModelError(f"{self.root}: no active version to roll back from"
                                 + (f" ({CURRENT} points at {active!r}, which is not a usable version)"
                                    if active else ""))
            older = [i for i in infos if _number(i.name) < _number(active)]
            if not older:
                raise ModelError(f"{self.root}: {active} is the oldest version; there is nothing to roll back to")
            previous = older[-1]
            self._switch(previous.name, _no_hook)
        log.info("rolled back from %s to %s (%s)", active, previous.name, previous.version)
        return replace(previous, active=True)

    def clean(self) -> list[Path]:
        """Remove what a crash left behind: ``.candidate-*`` folders (except those of a live
        process, by the pid in their name) and temporary pointer links. Returns what went."""
        if not self.root.is_dir():
            return []
        removed: list[Path] = []
        with self._locked():
            for entry in os.scandir(self.root):
                path = Path(entry.path)
                if entry.name.startswith(_LINK_PREFIX) and entry.is_symlink():
                    os.unlink(path)
                elif entry.name.startswith(CANDIDATE_PREFIX) and not entry.is_symlink() and entry.is_dir():
                    if _writer_alive(entry.name):
                        continue
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    continue
                removed.append(path)
        for path in removed:
            log.info("removed leftover %s", path)
        return removed

    # --- internals ------------------------------------------------------------------------------

    def _numbered(self) -> list[tuple[int, str]]:
        """``(number, name)`` of every ``vNNNN`` entry, by number (validity not checked)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ModelError(f"{self.root}: cannot list model versions: {exc.strerror}") from exc
        return sorted((int(m.group(1)), n) for n in names if (m := _VERSION_RE.fullmatch(n)))

    def _next_number(self) -> int:
        """One more than any ``vNNNN`` name in use, valid or not (a name is never reused)."""
        numbered = self._numbered()
        return numbered[-1][0] + 1 if numbered else 1

    def _pointer(self) -> str | None:
        """The version name ``current`` points at, if it is a symlink to a plain ``vNNNN`` name.

        Anything else (a real folder, an absolute or ``..`` target) is not ours: it is ignored with
        a warning rather than followed out of the store.
        """
        link = self.root / CURRENT
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s: not a symlink to a model version (%s); ignored", link, exc.strerror)
            return None
        if not _VERSION_RE.fullmatch(target):
            log.warning("%s: points at %r, not at a version in %s; ignored", link, target, self.root)
            return None
        return target

    def _info(self, name: str, active: bool) -> VersionInfo | None:
        """The :class:`VersionInfo` of ``root/name``, or ``None`` with a warning if it is not complete."""
        path = self.root / name
        problem = light_check(path)
        if problem:
            _warn_once(f"model version {path} skipped: {problem}")
            return None
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        side = _read_sidecar(path)
        metrics = dict(meta.get("metrics") or {}) if isinstance(meta.get("metrics"), dict) else {}
        if isinstance(side.get("metrics"), dict):
            metrics.update(side["metrics"])
        return VersionInfo(
            version=str(meta.get("version") or name), path=path, active=active,
            created=str(meta.get("created", "")), genres=[str(g) for g in meta["genres"]],
            metrics=metrics, n_labels=_int(side.get("n_labels", 0)),
        )

    def _promote(self, candidate: Path, n_labels: int, metrics: Mapping[str, Any] | None,
                 step: Hook, activate: bool = True) -> VersionInfo:
        """:meth:`promote` under the lock (``activate=False``: add the version, leave ``current``)."""
        self._check_candidate(candidate)
        inside = os.path.realpath(candidate.parent) == os.path.realpath(self.root)
        if inside and not candidate.name.startswith(CANDIDATE_PREFIX):
            raise ModelError(f"{candidate}: a candidate inside {self.root} must be a "
                             f"'{CANDIDATE_PREFIX}*' folder, not a version or anything else")
        work = candidate
        if not inside:
            work = self.new_candidate()
            try:
                shutil.copytree(candidate, work, symlinks=True, dirs_exist_ok=True)
            except OSError as exc:
                shutil.rmtree(work, ignore_errors=True)
                raise ModelError(f"cannot copy {candidate} into {self.root}: {exc}") from exc
            step("copied")
        try:
            self._validate(work)
            _write_json(work / SIDECAR, {
                "promoted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "n_labels": int(n_labels), "metrics": finite_json(dict(metrics or {})),
                "source": None if inside else os.fspath(candidate),
            })
            _chmod_readable(work)
            _fsync_tree(work)
            step("prepared")
            target = self.root / f"v{self._next_number():04d}"
            os.rename(work, target)  # the commit: a complete directory appears under its name
            _fsync_dir(self.root)
        except OSError as exc:
            if work is not candidate:
                shutil.rmtree(work, ignore_errors=True)
            raise ModelError(f"cannot promote {candidate} in {self.root}: {exc}") from exc
        except BaseException:
            if work is not candidate:
                shutil.rmtree(work, ignore_errors=True)
            raise
        step("renamed")
        if not activate:
            info = self._info(target.name, False)
            if info is None:
                raise ModelError(f"{target}: added but unreadable")
            return info
        self._switch(target.name, step)
        step("switched")
        info = self._info(target.name, True)
        if info is None:  # only if someone tampered with it between the rename and here
            raise ModelError(f"{target}: promoted but unreadable")
        return info

    def _activate(self, name: str, step: Hook) -> VersionInfo:
        """:meth:`activate` under the lock."""
        info = self.find(name)
        self._switch(info.name, step)
        return replace(info, active=True)

    def _check_candidate(self, candidate: Path) -> None:
        if candidate.is_symlink() or not candidate.is_dir():
            raise ModelError(f"{candidate}: a candidate model must be a real directory (not a symlink)")
        problem = light_check(candidate)
        if problem:
            raise ModelError(f"{candidate}: not a complete model, not promoted: {problem}")

    @staticmethod
    def _validate(work: Path) -> None:
        """Load the model once: a version that cannot be loaded is never created."""
        from genre_daemon.model.files import load_model

        load_model(work)

    def _switch(self, name: str, step: Hook) -> None:
        """Point ``current`` at ``name``: a fresh symlink renamed over the old one (atomic)."""
        link = self.root / CURRENT
        if os.path.lexists(link) and not link.is_symlink():
            raise ModelError(f"{link}: exists and is not a symlink (made by hand?); move it away, "
                             "genre-daemon keeps the active model as a symlink there")
        tmp = self.root / f"{_LINK_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.symlink(name, tmp)
            step("linked")
            os.replace(tmp, link)
            _fsync_dir(self.root)
        except OSError as exc:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise ModelError(f"cannot point {link} at {name}: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive ``flock`` on ``root/.lock``; released by the kernel if the holder dies."""
        import fcntl

        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ModelError(f"{self.root / LOCK}: cannot open the model store lock: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def seed_default(store: ModelStore, default_dir: Path, *, activate: bool = True) -> VersionInfo:
    """Make sure the store holds the model the daemon started with: if it has no version at all,
    copy ``default_dir`` (the shipped model) in as ``v0001`` and activate it, so a rollback can
    always reach it. If versions exist but none is active (a crash during the very first
    promotion, a deleted pointer), the newest one is activated.

    ``activate=False`` (a retrain about to promote its candidate): the copy is added but
    ``current`` is left alone, so the daemon never switches to the copy for the moment before
    the promotion (it would re-sort the review folder with the old model)."""
    with store._locked():  # two processes seeding at once must not make two copies
        active = store.active()
        if active is not None:
            return active
        infos = store.versions()
        if not infos:
            info = store._promote(Path(default_dir), 0, None, _no_hook, activate=activate)
            log.info("shipped model %s copied in as %s", info.version, info.name)
            return info
        if not activate:
            return infos[-1]
        log.warning("%s: no active model version; activating the newest, %s", store.root, infos[-1].name)
        return store._activate(infos[-1].name, _no_hook)


# --- small helpers ------------------------------------------------------------------------------

_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` once per process: the daemon reads the pointer every few seconds, and a
    skipped version would otherwise fill its log."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)



def light_check(path: Path) -> str | None:
    """Why ``path`` is not a complete model directory (without loading weights), or ``None``."""
    if path.is_symlink():
        return "is a symlink (never followed)"
    if not path.is_dir():
        return "not a directory"
    for name in (META_FILE, WEIGHTS_FILE):
        f = path / name
        if f.is_symlink() or not f.is_file():
            return f"{name} is missing or not a regular file"
    if (path / WEIGHTS_FILE).stat().st_size < 9:
        return f"{WEIGHTS_FILE} is truncated"
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{META_FILE} is unreadable: {exc}"
    genres = meta.get("genres") if isinstance(meta, dict) else None
    if not isinstance(genres, list) or not genres:
        return f"{META_FILE} has no genre list"
    fmt = meta.get("format_version")
    if fmt == 1:
        # Kept on disk, never used: the daemon falls back to the shipped model, and its next
        # retrain learns the user's labels again in the new embedding space.
        return ("a round-1 model (format_version 1, librosa features) that this genre-daemon cannot use; "
                "kept, not used (the shipped model serves until a retrain promotes a new version)")
    if fmt not in READABLE_FORMATS:
        return f"{META_FILE} has format_version {fmt!r}, not one of {', '.join(map(str, READABLE_FORMATS))}"
    return None


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / SIDECAR).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable (%s); its label count and metrics are not shown", path / SIDECAR, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _number(name: str) -> int:
    m = _VERSION_RE.fullmatch(name)
    return int(m.group(1)) if m else -1


def finite_json(value: Any) -> Any:
    """``value`` (nested dicts, lists, tuples) with NaN/inf replaced by ``None``: strict JSON, which
    ``version.json`` and the review page's metrics must be (``json`` would write ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _writer_alive(name: str) -> bool:
    """Whether the pid in ``.candidate-<pid>-XXXX`` is a live process other than this one."""
    m = re.match(re.escape(CANDIDATE_PREFIX) + r"(\d+)-", name)
    if not m or int(m.group(1)) == os.getpid():
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # An explicit 0o644: open(path, "w") would make it world-writable under umask 0.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with open(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _chmod_readable(directory: Path) -> None:
    """mkdtemp makes 0700: let ``model list`` by another user read a service's versions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o755 & ~umask)


def _fsync_tree(directory: Path) -> None:
    """fsync every regular file in ``directory`` and the directory itself."""
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False):
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CURRENT", "ModelStore", "VersionInfo", "finite_json", "light_check", "resolve_model_dir", "seed_default"]


def resolve_model_dir(settings: Any) -> Path:
    """The model the daemon uses: ``model:`` from the config; else the newest promoted model in
    ``state_dir``; else the shipped default. Here, not in the service, so that ``genre-daemon
    web`` and the retrain child find it without importing the service (and with it torch)."""
    if settings.model is not None:
        return settings.model
    active = ModelStore(settings.state_dir / "models").active_dir()
    if active is not None:
        return active
    return default_model_dir()
