"""genre_daemon.learning.versions on a real filesystem: real model directories (the shipped one, and small
ones saved by genre_daemon.model.files), child processes SIGKILLed at every step of a promotion, a
child process switching the pointer while this one reads it, and the `model` commands through a
real argparse parser with a YAML config in tmp_path. No mocks.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.resources import default_model_dir
from genre_daemon.errors import ModelError
from genre_daemon.model.files import META_FILE, WEIGHTS_FILE, load_model, read_metadata
from genre_daemon.learning.model_command import add_model_parser, cmd_model_list, cmd_model_rollback
from genre_daemon.learning.versions import CURRENT, ModelStore, VersionInfo, seed_default

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = default_model_dir()
JSON_KEYS = {"version", "active", "created", "genres", "metrics", "n_labels"}


# ---------------------------------------------------------------------------------------------
# Helpers and fixtures.


def make_model(path: Path, version: str, genres: list[str] | None = None) -> Path:
    """A real, loadable model directory: the shipped one renamed, or a fresh small net saved by
    save_model when other ``genres`` are wanted."""
    if genres is None:
        shutil.copytree(SHIPPED, path)
        meta = read_metadata(path)
        meta["version"] = version
        (path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        return path
    from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd
    from genre_daemon.model.files import Architecture, GenreModel, GenreNet, save_model

    net = GenreNet(Architecture(n_classes=len(genres), hidden=8))
    save_model(GenreModel(net=net, genres=genres, frontend=FrontEnd.from_directory(DEFAULT_INPUTS),
                          version=version), path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "state" / "models")


def candidate(store: ModelStore, version: str, genres: list[str] | None = None) -> Path:
    """A candidate written inside the store, as the trainer does."""
    path = store.new_candidate()
    path.rmdir()
    return make_model(path, version, genres)


def names(store: ModelStore) -> list[str]:
    return [v.name for v in store.versions()]


def leftovers(store: ModelStore) -> list[str]:
    return sorted(n for n in os.listdir(store.root) if n.startswith(".") and n != ".lock")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_child(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT_ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------
# Promotion, numbering, the pointer.


def test_first_promotion_is_v0001_and_active(store: ModelStore) -> None:
    cand = candidate(store, "r1")
    info = store.promote(cand, n_labels=7, metrics={"held_out_labels": 0.8})
    assert info.name == "v0001" and info.version == "r1" and info.active and info.n_labels == 7
    assert info.path == store.root / "v0001"
    assert not cand.exists(), "a candidate inside the store is consumed"
    link = store.root / CURRENT
    assert link.is_symlink() and os.readlink(link) == "v0001", "a relative symlink to the version"
    assert store.active_dir() == store.root / "v0001"
    model = load_model(store.active_dir())
    assert model.version == "r1" and model.genres == read_metadata(SHIPPED)["genres"]
    assert info.metrics["held_out_labels"] == 0.8
    assert info.metrics["validation"] == read_metadata(SHIPPED)["metrics"]["validation"]
    assert leftovers(store) == []


def test_numbering_and_versions_oldest_first(store: ModelStore, tmp_path: Path) -> None:
    for i in range(1, 4):
        store.promote(candidate(store, f"r{i}"), n_labels=10 * i)
    outside = make_model(tmp_path / "elsewhere", "r4", ["jazz", "polka"])
    info = store.promote(outside)
    assert info.name == "v0004" and info.genres == ["jazz", "polka"]
    assert (outside / META_FILE).is_file(), "a candidate outside the store is copied, not moved"
    versions = store.versions()
    assert [v.name for v in versions] == ["v0001", "v0002", "v0003", "v0004"]
    assert [v.version for v in versions] == ["r1", "r2", "r3", "r4"]
    assert [v.active for v in versions] == [False, False, False, True]
    assert [v.n_labels for v in versions] == [10, 20, 30, 0]
    assert store.active() == versions[-1]
    assert leftovers(store) == []


def test_version_dirs_are_readable_by_others(store: ModelStore) -> None:
    """mkdtemp makes 0700; a version is widened to 0755 less the umask, like the model files."""
    old = os.umask(0o022)
    try:
        info = store.promote(candidate(store, "r1"))
    finally:
        os.umask(old)
    assert info.path.stat().st_mode & 0o777 == 0o755


def test_rollback_walks_back_and_stops_at_the_oldest(store: ModelStore) -> None:
    for i in range(1, 4):
        store.promote(candidate(store, f"r{i}"))
    assert store.rollback().name == "v0002"
    assert os.readlink(store.root / CURRENT) == "v0002"
    assert load_model(store.active_dir()).version == "r2"
    assert store.rollback().name == "v0001"
    with pytest.raises(ModelError, match="v0001 is the oldest version"):
        store.rollback()
    assert store.active().name == "v0001", "a refused rollback changes nothing"
    # Numbers are never reused: the next promotion after rollbacks is v0004, and active.
    assert store.promote(candidate(store, "r4")).name == "v0004"
    assert [v.active for v in store.versions()] == [False, False, False, True]


def test_rollback_of_an_empty_store_is_an_error(store: ModelStore) -> None:
    with pytest.raises(ModelError, match="no active version"):
        store.rollback()


def test_activate_by_directory_name_or_model_version(store: ModelStore) -> None:
    for i in range(1, 4):
        store.promote(candidate(store, f"r{i}"))
    assert store.activate("v0001").version == "r1"
    assert store.active().name == "v0001"
    assert store.activate("r3").name == "v0003"
    with pytest.raises(ModelError, match="no such version: 'v0009'.*v0001 \\(r1\\)"):
        store.activate("v0009")
    assert store.active().name == "v0003"


def test_pointer_switch_is_atomic_for_a_concurrent_reader(store: ModelStore) -> None:
    """A child process flips `current` between two versions as fast as it can; every read here
    sees one of the two complete versions, never a missing or dangling pointer."""
    store.promote(candidate(store, "r1"))
    store.promote(candidate(store, "r2"))
    flipper = subprocess.Popen(
        [sys.executable, "-c",
         ("import sys; from pathlib import Path; from genre_daemon.learning.versions import ModelStore\n"
          "s = ModelStore(Path(sys.argv[1]))\n"
          "print('go', flush=True)\n"
          "for i in range(1000): s.activate('v0001' if i % 2 else 'v0002')\n"), str(store.root)],
        cwd=PROJECT_ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert flipper.stdout.readline() == b"go\n"
    link = store.root / CURRENT
    seen: set[str] = set()
    reads = 0
    try:
        while flipper.poll() is None:
            for _ in range(50):  # the cheap read the daemon's tick does, many times
                assert os.readlink(link) in ("v0001", "v0002"), "the pointer was missing"
            active = store.active_dir()
            assert active is not None, "the pointer was missing or dangling"
            seen.add(read_metadata(active)["version"])
            reads += 1
    finally:
        flipper.kill()
        _, err = flipper.communicate(timeout=60)
    assert flipper.returncode == 0, err.decode()
    assert seen == {"r1", "r2"} and reads > 10
    assert leftovers(store) == [], "no temporary links left behind"


def test_listing_versions_does_not_import_torch(store: ModelStore) -> None:
    """`model list` and the daemon's pointer check stay light; the names agree with model.py."""
    from genre_daemon.model import files as model
    from genre_daemon.learning import versions

    assert (versions.META_FILE, versions.WEIGHTS_FILE) == (model.META_FILE, model.WEIGHTS_FILE)
    store.promote(candidate(store, "r1"))
    code = ("import sys; from pathlib import Path; from genre_daemon.learning.versions import ModelStore\n"
            "s = ModelStore(Path(sys.argv[1])); assert s.active_dir() is not None and s.versions()\n"
            "print('torch' in sys.modules)\n")
    proc = run_child(code, str(store.root))
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


# ---------------------------------------------------------------------------------------------
# Refusals: nothing incomplete or unsafe becomes a version.


def test_incomplete_candidate_is_refused_and_nothing_changes(store: ModelStore, tmp_path: Path) -> None:
    store.promote(candidate(store, "r1"))
    broken = make_model(tmp_path / "broken", "r2")
    (broken / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match=f"{broken}.*{WEIGHTS_FILE} is missing"):
        store.promote(broken)
    assert names(store) == ["v0001"] and store.active().name == "v0001"


def test_unloadable_weights_are_refused_and_the_copy_removed(store: ModelStore, tmp_path: Path) -> None:
    store.promote(candidate(store, "r1"))
    bad = make_model(tmp_path / "bad", "r2")
    (bad / WEIGHTS_FILE).write_bytes(b"\x80\x04not a safetensors file, a pickle perhaps")
    with pytest.raises(ModelError, match="safetensors"):
        store.promote(bad)
    assert names(store) == ["v0001"] and store.active().name == "v0001"
    assert leftovers(store) == [], "the copy made for the refused candidate is gone"


def test_symlinked_candidate_is_refused(store: ModelStore, tmp_path: Path) -> None:
    real = make_model(tmp_path / "real", "r1")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ModelError, match="not a symlink"):
        store.promote(tmp_path / "link")
    assert store.versions() == []


def test_a_version_cannot_be_promoted_again(store: ModelStore) -> None:
    store.promote(candidate(store, "r1"))
    with pytest.raises(ModelError, match="must be a '.candidate-\\*' folder"):
        store.promote(store.root / "v0001")
    assert names(store) == ["v0001"]


def test_current_that_is_a_real_folder_is_not_clobbered(store: ModelStore) -> None:
    make_model(store.root / CURRENT, "by-hand")
    assert store.active() is None
    with pytest.raises(ModelError, match="is not a symlink"):
        store.promote(candidate(store, "r1"))
    assert (store.root / CURRENT / META_FILE).is_file()


def test_malformed_version_dirs_are_skipped_with_a_warning(
    store: ModelStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.promote(candidate(store, "r1"))
    make_model(store.root / "v0002", "no-weights")
    (store.root / "v0002" / WEIGHTS_FILE).unlink()
    make_model(store.root / "v0003", "bad-json")
    (store.root / "v0003" / META_FILE).write_text("{not json", encoding="utf-8")
    (store.root / "v0004").symlink_to(make_model(tmp_path / "outside", "outside"))
    (store.root / "v0005").write_text("a file", encoding="utf-8")
    make_model(store.root / "v12", "not-a-version-name")
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.versions"):
        assert names(store) == ["v0001"]
    text = caplog.text
    assert "v0002" in text and "missing" in text
    assert "v0003" in text and "unreadable" in text
    assert "v0004" in text and "symlink" in text
    assert "v0005" in text and "not a directory" in text
    # A malformed name is never reused, and rollback skips malformed versions.
    assert store.promote(candidate(store, "r6")).name == "v0006"
    assert store.rollback().name == "v0001"


def test_pointer_out_of_the_store_is_not_followed(store: ModelStore, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    store.root.mkdir(parents=True)
    (store.root / CURRENT).symlink_to(make_model(tmp_path / "outside", "outside"))
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.versions"):
        assert store.active_dir() is None
    assert "not at a version" in caplog.text
    # Promotion replaces the stray link itself (never writes through it).
    store.promote(candidate(store, "r1"))
    assert os.readlink(store.root / CURRENT) == "v0001"
    assert read_metadata(tmp_path / "outside")["version"] == "outside"


# ---------------------------------------------------------------------------------------------
# Crash safety: a child process is SIGKILLed right after each step of a promotion.

KILL_PROMOTE = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.learning.versions import ModelStore
root, cand, kill_at = sys.argv[1:4]

def hook(step):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

ModelStore(Path(root)).promote(Path(cand), n_labels=5, hook=hook)
sys.exit(3)  # never reached: every step named is taken
"""

INSIDE_STEPS = ["prepared", "renamed", "linked", "switched"]
OUTSIDE_STEPS = ["copied", *INSIDE_STEPS]


@pytest.mark.parametrize(("where", "step"), [("inside", s) for s in INSIDE_STEPS]
                         + [("outside", s) for s in OUTSIDE_STEPS])
def test_sigkill_at_every_promotion_step_leaves_a_loadable_active_model(
    store: ModelStore, tmp_path: Path, where: str, step: str
) -> None:
    store.promote(candidate(store, "r1"))
    cand = candidate(store, "r2") if where == "inside" else make_model(tmp_path / "cand", "r2")

    proc = run_child(KILL_PROMOTE, str(store.root), str(cand), step)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    # Right after the crash: `current` points at a complete, loadable version.
    switched = step == "switched"
    active = store.active()
    assert active is not None and active.name == ("v0002" if switched else "v0001")
    assert load_model(store.active_dir()).version == ("r2" if switched else "r1")
    # A version exists only once it is complete (renamed after everything was written and synced).
    complete = INSIDE_STEPS.index(step) >= 1 if step in INSIDE_STEPS else False
    assert names(store) == (["v0001", "v0002"] if complete else ["v0001"])
    for v in store.versions():
        load_model(v.path)
    if complete:
        assert store.versions()[1].n_labels == 5

    # clean() removes the leftovers; the next promotion takes the next free number.
    store.clean()
    assert leftovers(store) == []
    nxt = store.promote(candidate(store, "r3"))
    assert nxt.name == ("v0003" if complete else "v0002") and nxt.active
    assert load_model(store.active_dir()).version == "r3"


def test_sigkill_while_activating_leaves_the_old_pointer(store: ModelStore) -> None:
    store.promote(candidate(store, "r1"))
    store.promote(candidate(store, "r2"))
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom genre_daemon.learning.versions import ModelStore\n"
            "ModelStore(Path(sys.argv[1])).activate('v0001', hook=lambda s: os.kill(os.getpid(), signal.SIGKILL))\n")
    proc = run_child(code, str(store.root))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert store.active().name == "v0002"
    assert [p.name.startswith(".current-") for p in map(Path, leftovers(store))] == [True]
    assert [p.name[:9] for p in store.clean()] == [".current-"]
    assert leftovers(store) == []
    assert store.rollback().name == "v0001", "the lock held by the killed child was released"


def test_clean_keeps_the_candidate_of_a_live_process(store: ModelStore) -> None:
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        store.root.mkdir(parents=True)
        live = store.root / f".candidate-{writer.pid}-abc"
        live.mkdir()
        dead = store.root / ".candidate-x1y2z3"
        dead.mkdir()
        (dead / "weights.safetensors").write_bytes(b"half")
        assert store.clean() == [dead]
        assert live.is_dir()
    finally:
        writer.kill()
        writer.wait(10)
    assert store.clean() == [live]
    assert leftovers(store) == []


# ---------------------------------------------------------------------------------------------
# seed_default.


def test_seed_default_copies_the_shipped_model_in_once(store: ModelStore) -> None:
    info = seed_default(store, SHIPPED)
    assert info.name == "v0001" and info.active and info.n_labels == 0
    assert info.version == read_metadata(SHIPPED)["version"]
    assert (info.path / WEIGHTS_FILE).read_bytes() == (SHIPPED / WEIGHTS_FILE).read_bytes()
    assert sorted(os.listdir(SHIPPED)) == sorted(n for n in os.listdir(info.path) if n != "version.json")
    assert seed_default(store, SHIPPED) == info
    assert names(store) == ["v0001"]
    # So a rollback after the first retrain reaches the shipped model.
    store.promote(candidate(store, "r2"))
    assert store.rollback().version == read_metadata(SHIPPED)["version"]


def test_seed_default_for_a_promotion_adds_the_copy_without_switching_to_it(store: ModelStore) -> None:
    """A retrain seeds then promotes: the pointer must go from nothing (the shipped model) straight
    to the candidate, never to the copy, which the daemon would switch to and re-sort review with."""
    info = seed_default(store, SHIPPED, activate=False)
    assert info.name == "v0001" and not info.active
    assert store.active() is None and not os.path.lexists(store.root / CURRENT)
    store.promote(candidate(store, "r2"))
    assert [(v.name, v.active) for v in store.versions()] == [("v0001", False), ("v0002", True)]
    assert store.rollback().name == "v0001"


def test_seed_default_reactivates_after_a_crash_in_the_first_promotion(store: ModelStore) -> None:
    proc = run_child(KILL_PROMOTE, str(store.root), str(SHIPPED), "renamed")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert store.active() is None and names(store) == ["v0001"]
    info = seed_default(store, SHIPPED)
    assert info.name == "v0001" and store.active_dir() == store.root / "v0001"
    assert names(store) == ["v0001"], "no second copy of the shipped model"


def test_seed_default_is_a_no_op_when_a_version_is_active(store: ModelStore) -> None:
    store.promote(candidate(store, "r1"))
    assert seed_default(store, SHIPPED).version == "r1"
    assert names(store) == ["v0001"]


def test_the_store_and_the_model_agree_on_the_format() -> None:
    from genre_daemon.model import files as model
    from genre_daemon.learning import versions

    assert versions.MODEL_FORMAT == model.FORMAT_VERSION
    assert versions.READABLE_FORMATS == model.READABLE_FORMATS


def _make_format(path: Path, version: str, fmt: int) -> Path:
    """A small real model of ``fmt``: format 3 with AudioSet's prior (a prior-only genre at the
    end of its genre list), or format 2 as round 2 wrote it (musicnn only, no prior)."""
    from genre_daemon.model.files import Architecture, GenreModel, GenreNet, save_model
    from genre_daemon.model.frontend import FrontEnd
    from genre_daemon.model.prior import AudioSetPrior
    from genre_daemon.model.tagging import tagger_identity

    inputs = ("msd_tags",)
    prior = AudioSetPrior({"blues": (251,), "classical": (237, 238), "electronic": (239, 240)}, 1.4, 1.5,
                          ("electronic",), frontend=tagger_identity()) if fmt == 3 else None
    model = GenreModel(net=GenreNet(Architecture(inputs=inputs, n_classes=2, hidden=8)),
                       genres=["blues", "classical", *(["electronic"] if prior else [])],
                       frontend=FrontEnd.from_directory(inputs), version=version, prior=prior)
    save_model(model, path)
    if fmt == 2:
        meta = read_metadata(path)
        meta["format_version"] = 2
        (path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_format_2_and_format_3_versions_are_listed_switched_and_served(store: ModelStore, tmp_path: Path) -> None:
    """Round 2's versions stay usable after the upgrade and round 3's are versions like any other:
    listed with their whole genre list (prior-only genres too), activated, rolled back to, and
    loaded by what the daemon loads on a switch."""
    from genre_daemon.model.inference import Classifier

    store.promote(_make_format(tmp_path / "old", "round2", 2), n_labels=3)
    store.promote(_make_format(tmp_path / "new", "round3", 3), n_labels=5)
    versions = store.versions()
    assert [(v.version, v.active, v.genres) for v in versions] == [
        ("round2", False, ["blues", "classical"]), ("round3", True, ["blues", "classical", "electronic"])]
    served = Classifier.from_dir(store.active_dir())
    assert served.tagger is not None and served.model.prior.prior_only == ("electronic",)
    assert store.rollback().version == "round2"
    served = Classifier.from_dir(store.active_dir())
    assert served.tagger is None and served.model.prior is None and served.model.genres == ["blues", "classical"]
    assert store.activate("round3").name == "v0002"


def _make_round1(path: Path) -> Path:
    """A version directory as a round-1 daemon promoted it (format 1 model.json)."""
    make_model(path, "r-old")
    meta = read_metadata(path)
    meta["format_version"] = 1
    (path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_a_round1_active_version_is_kept_but_not_used(store: ModelStore, caplog: pytest.LogCaptureFixture) -> None:
    """After an upgrade, a promoted round-1 model is not loadable: the store reports no active
    version (the daemon then serves the shipped model), warns once, and the next promotion
    gets a fresh number; rollback never reaches the round-1 version."""
    from genre_daemon.config import load_settings
    from genre_daemon.daemon.service import resolve_model_dir

    store.root.mkdir(parents=True)
    _make_round1(store.root / "v0001")
    (store.root / CURRENT).symlink_to("v0001")
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.versions"):
        assert store.active() is None and store.active_dir() is None and store.versions() == []
        store.active_dir()
    assert caplog.text.count("round-1 model") == 1
    settings = load_settings(write_config(store.root.parent.parent))
    assert resolve_model_dir(settings) == SHIPPED
    info = seed_default(store, SHIPPED)
    assert info.name == "v0002" and names(store) == ["v0002"]
    assert (store.root / "v0001" / META_FILE).is_file()  # kept on disk
    with pytest.raises(ModelError, match="oldest version"):
        store.rollback()


def test_a_round1_candidate_is_never_promoted(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="round-1 model"):
        store.promote(_make_round1(tmp_path / "old"))
    assert store.versions() == []


# ---------------------------------------------------------------------------------------------
# The `model` commands, through a real parser and a YAML config in tmp_path.


def write_config(tmp_path: Path, **extra: object) -> Path:
    settings = {"inbox": tmp_path / "inbox", "library": tmp_path / "library",
                "review_dir": tmp_path / "library" / "_review",
                "quarantine_dir": tmp_path / "inbox" / ".quarantine", "state_dir": tmp_path / "state", **extra}
    config = tmp_path / "config.yaml"
    config.write_text("".join(f"{k}: {json.dumps(str(v))}\n" for k, v in settings.items()), encoding="utf-8")
    return config


def parser() -> argparse.ArgumentParser:
    """A top-level parser with only the `model` command registered, as cli.py registers it."""
    p = argparse.ArgumentParser(prog="genre-daemon")
    add_model_parser(p.add_subparsers(dest="command", required=True), "config file")
    return p


def run_cli(*argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_parser_wires_the_two_actions() -> None:
    assert parser().parse_args(["model", "list", "--json"]).func is cmd_model_list
    assert parser().parse_args(["model", "rollback", "--config", "c.yaml"]).func is cmd_model_rollback
    with pytest.raises(SystemExit):
        parser().parse_args(["model"])  # an action is required


def test_model_list_json_of_an_empty_store_shows_the_shipped_model(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, out, _ = run_cli("model", "list", "--config", str(config), "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1 and set(rows[0]) == JSON_KEYS
    assert rows[0]["active"] is True and rows[0]["version"] == read_metadata(SHIPPED)["version"]
    assert rows[0]["genres"] == read_metadata(SHIPPED)["genres"] and rows[0]["n_labels"] == 0
    assert not (tmp_path / "state").exists(), "listing writes nothing"


def test_model_list_and_rollback_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    store = ModelStore(tmp_path / "state" / "models")
    seed_default(store, SHIPPED)
    store.promote(candidate(store, "r2", ["jazz", "polka"]), n_labels=23,
                  metrics={"held_out_labels": 0.75, "gate": {"reason": "promoted: ...", "bad": float("inf")}})

    code, out, _ = run_cli("model", "list", "--config", str(config), "--json")
    rows = [json.loads(line) for line in out.splitlines()]  # strict JSON: inf became null
    assert code == 0 and [set(r) for r in rows] == [JSON_KEYS, JSON_KEYS]
    assert [r["active"] for r in rows] == [False, True]
    assert rows[1] == {"version": "r2", "active": True, "created": rows[1]["created"], "genres": ["jazz", "polka"],
                       "metrics": {"held_out_labels": 0.75, "gate": {"reason": "promoted: ...", "bad": None}},
                       "n_labels": 23}

    code, out, _ = run_cli("model", "list", "--config", str(config))
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["name", "version", "created"]
    assert lines[2].startswith("*") and "v0002" in lines[2] and "r2" in lines[2] and "0.750" in lines[2]
    assert not lines[1].startswith("*") and "v0001" in lines[1]

    code, out, err = run_cli("model", "rollback", "--config", str(config))
    assert code == 0 and out.startswith("active now: v0001") and err == ""
    assert store.active().name == "v0001"
    with pytest.raises(ModelError, match="oldest version"):
        run_cli("model", "rollback", "--config", str(config))


def test_model_rollback_with_nothing_promoted_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with pytest.raises(ModelError, match="no model has been promoted yet"):
        run_cli("model", "rollback", "--config", str(config))


def test_a_pinned_model_is_pointed_out(tmp_path: Path) -> None:
    config = write_config(tmp_path, model=SHIPPED)
    code, _, err = run_cli("model", "list", "--config", str(config))
    assert code == 0 and "pins" in err and "model: null" in err


def test_version_info_to_json_has_exactly_the_pinned_keys(tmp_path: Path) -> None:
    info = VersionInfo("r1", tmp_path / "v0001", True, "2026-01-01T00:00:00+00:00", ["a"],
                       {"x": float("nan")}, 3)
    assert info.to_json() == {"version": "r1", "active": True, "created": "2026-01-01T00:00:00+00:00",
                              "genres": ["a"], "metrics": {"x": None}, "n_labels": 3}
    assert info.name == "v0001"
