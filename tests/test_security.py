"""Security: no link, name, config or umask lets the daemon read, move or write outside its folders.

Real files in tmp_path, /dev/shm as a second filesystem, the real daemon as a subprocess (``Tree``
from tests/daemon/test_service.py) where the behaviour is the daemon's. Checks that already exist
elsewhere are not repeated here (see the README, "What genre-daemon promises"):
tests/filing/test_mover.py (symlink sources and symlinked destination folders refused),
tests/filing/test_destination.py (hostile genre and file names), tests/daemon/test_service.py::test_symlink_in_inbox_is_never_followed_or_moved,
tests/learning/test_labels.py::test_symlinks_are_ignored_and_never_followed (library),
tests/model/test_files.py (a pickle or a ``torch.save`` file in place of the weights is refused),
tests/learning/test_cache.py (pickles and symlinks in the feature cache), tests/test_config.py
(folder roles that clash).
"""

from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PROJECT_ROOT, write_tone
from genre_daemon.filing import destination, mover
from genre_daemon.resources import default_model_dir
from genre_daemon.config import load_settings
from genre_daemon.errors import ConfigError, ModelError
from genre_daemon.filing.journal import Journal
from genre_daemon.learning.labels import scan_labels
from genre_daemon.model.frontend import FrontEnd
from genre_daemon.model.files import Architecture, GenreModel, GenreNet, load_model, save_model
from support import Tree, wait_for

HAVE_MODEL = (default_model_dir() / "model.json").is_file()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="no shipped model (models/default)")
NOBODY = 65534  # a uid that is not the daemon's (tests run as root; see the hard-link tests)


def tone(path: Path, seconds: float = 3.0, freq: float = 440.0) -> Path:
    return write_tone(path, seconds=seconds, sr=22050, freq=freq)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def inbox_for(kind: str, tmp_path: Path, shm_dir: Path | None) -> Path:
    return tmp_path / "inbox" if kind == "same" else (shm_dir or tmp_path) / "inbox"


# ---------------------------------------------------------------------------------------------
# Symlinks and hard links at the destination: overwrite replaces the name, never the file.


@pytest.mark.parametrize("kind", ["same", "cross"])
@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_overwrite_of_a_linked_destination_replaces_the_name_and_never_writes_through_it(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str, link: str
) -> None:
    shm_dir = request.getfixturevalue("shm") if kind == "cross" else None
    victim = put(tmp_path / "outside" / "victim.mp3", b"victim")
    lib = tmp_path / "lib"
    (lib / "jazz").mkdir(parents=True)
    target = lib / "jazz" / "a.mp3"
    if link == "symlink":
        target.symlink_to(victim)
    else:
        os.link(victim, target)
    src = put(inbox_for(kind, tmp_path, shm_dir) / "a.mp3", b"new")
    result = mover.move(src, target, "overwrite", root=lib)
    assert result.destination == target and result.cross_device == (kind == "cross")
    assert not target.is_symlink() and target.read_bytes() == b"new"
    assert victim.read_bytes() == b"victim" and os.stat(victim).st_nlink == 1
    assert os.lstat(target).st_ino != os.stat(victim).st_ino


def test_rename_and_skip_treat_a_symlink_destination_as_taken(tmp_path: Path) -> None:
    victim = put(tmp_path / "outside" / "victim.mp3", b"victim")
    lib = tmp_path / "lib"
    (lib / "jazz").mkdir(parents=True)
    (lib / "jazz" / "a.mp3").symlink_to(victim)
    skipped = mover.move(put(tmp_path / "in" / "a.mp3", b"one"), lib / "jazz" / "a.mp3", "skip", root=lib)
    assert skipped.skipped and (tmp_path / "in" / "a.mp3").read_bytes() == b"one"
    renamed = mover.move(tmp_path / "in" / "a.mp3", lib / "jazz" / "a.mp3", "rename", root=lib)
    assert renamed.destination == lib / "jazz" / "a (2).mp3"
    assert victim.read_bytes() == b"victim" and (lib / "jazz" / "a.mp3").is_symlink()


def test_a_symlinked_library_root_or_parent_is_not_written_through(tmp_path: Path) -> None:
    """``root`` is the library as configured; a symlinked genre folder or sub-folder below it is
    refused (tests/filing/test_mover.py checks one level; here a genre folder that is a symlink to a
    folder inside the library, and one to a file)."""
    lib = tmp_path / "lib"
    (lib / "rock").mkdir(parents=True)
    (lib / "jazz").symlink_to(lib / "rock")
    (lib / "pop").symlink_to(put(tmp_path / "outside" / "f", b"f"))
    src = put(tmp_path / "in" / "a.mp3", b"x")
    for genre in ("jazz", "pop"):
        with pytest.raises(mover.MoveError, match="symbolic link"):
            mover.move(src, destination.destination(src, genre, 1.0, library=lib, review_dir=lib / "_r",
                                              min_confidence=0.5), root=lib)
    assert src.read_bytes() == b"x" and os.listdir(lib / "rock") == []


# ---------------------------------------------------------------------------------------------
# Hard links in the inbox: the policy of mover.read_refusal.


def test_read_refusal_policy(tmp_path: Path) -> None:
    euid = os.geteuid()
    single = put(tmp_path / "in" / "single.mp3", b"x")
    outside = put(tmp_path / "outside" / "secret.mp3", b"secret")
    os.link(outside, tmp_path / "in" / "link.mp3")
    (tmp_path / "in" / "sym.mp3").symlink_to(outside)
    assert mover.read_refusal(single) is None
    assert mover.read_refusal(tmp_path / "in" / "link.mp3") is None  # the daemon's own user's link
    assert mover.read_refusal(tmp_path / "in" / "gone.mp3") is None  # left to the decoder
    assert mover.read_refusal(tmp_path / "in" / "sym.mp3") == "a symbolic link (never followed)"
    other = euid + 1
    reason = mover.read_refusal(tmp_path / "in" / "link.mp3", euid=other)
    assert reason is not None and "2 links" in reason and f"uid {euid}" in reason and f"uid {other}" in reason
    assert mover.read_refusal(single, euid=other) is None  # one link: nothing else can be named
    os.link(outside, tmp_path / "outside" / "third.mp3")
    assert "3 links" in (mover.read_refusal(tmp_path / "in" / "link.mp3", euid=other) or "")


def test_quarantining_a_hard_link_never_touches_its_other_name(tmp_path: Path) -> None:
    outside = put(tmp_path / "outside" / "secret.mp3", b"secret")
    os.chmod(outside, 0o600)
    before = os.stat(outside)
    (tmp_path / "in").mkdir()
    os.link(outside, tmp_path / "in" / "x.mp3")
    final = mover.quarantine(tmp_path / "in" / "x.mp3", tmp_path / "q", "a hard link (2 links)")
    assert not (tmp_path / "in" / "x.mp3").exists() and final == tmp_path / "q" / "x.mp3"
    after = os.stat(outside)
    assert outside.read_bytes() == b"secret" and stat.S_IMODE(after.st_mode) == 0o600
    assert (after.st_ino, after.st_mtime_ns, after.st_uid) == (before.st_ino, before.st_mtime_ns, before.st_uid)
    assert "2 links" in (tmp_path / "q" / ("x.mp3" + mover.REASON_SUFFIX)).read_text()


def test_a_copy_across_filesystems_keeps_the_owner_and_is_never_world_writable(
    tmp_path: Path, shm: Path
) -> None:
    src = put(shm / "in" / "a.mp3", b"x" * 1000)
    os.chmod(src, 0o666)
    if os.geteuid() == 0:
        os.chown(src, NOBODY, NOBODY)
    result = mover.move(src, tmp_path / "lib" / "jazz" / "a.mp3", root=tmp_path / "lib")
    assert result.cross_device
    st = os.stat(tmp_path / "lib" / "jazz" / "a.mp3")
    assert stat.S_IMODE(st.st_mode) == 0o664
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)


def test_folders_the_mover_makes_are_not_world_writable_under_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        src = put(tmp_path / "in" / "a.mp3", b"x")
        mover.move(src, tmp_path / "lib" / "deep" / "er" / "jazz" / "a.mp3", root=tmp_path / "lib" / "deep")
        src = put(tmp_path / "in" / "b.mp3", b"y")
        mover.move(src, tmp_path / "free" / "x" / "y" / "b.mp3")
        mover.quarantine(put(tmp_path / "in" / "c.mp3", b"z"), tmp_path / "q" / "sub", "bad")
    finally:
        os.umask(old)
    made = [tmp_path / p for p in ("lib", "lib/deep", "lib/deep/er", "lib/deep/er/jazz",
                                   "free", "free/x", "free/x/y", "q", "q/sub")]
    made += [tmp_path / "q" / "sub" / ("c.mp3" + mover.REASON_SUFFIX)]
    assert {str(p): oct(stat.S_IMODE(os.stat(p).st_mode)) for p in made if os.stat(p).st_mode & 0o002} == {}


# ---------------------------------------------------------------------------------------------
# Genre names: from a model file, from a label folder, and the destination property.

HOSTILE_GENRES = ["..", ".", "/", "a/b", "", "\x00", "a\x00b", "rock\n", "\x1b[31mred", "é" * 151,
                  "x" * 300, "-rf", ".hidden", "trailing.", " lead", "\u202eevil", "con", "\udcff",
                  unicodedata.normalize("NFD", "Électro")]


def _tiny_model(genres: list[str]) -> GenreModel:
    arch = Architecture(inputs=("msd_tags",), n_classes=len(genres), hidden=4, pooling="mean", skip_mean=False)
    return GenreModel(net=GenreNet(arch), genres=genres, frontend=FrontEnd.from_directory(arch.inputs))


def _write_model_with_genres(directory: Path, genres: list[str]) -> Path:
    save_model(_tiny_model(["a", "b"]), directory)
    meta_path = directory / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["genres"] = genres
    meta["architecture"]["n_classes"] = 2
    meta_path.write_text(json.dumps(meta))
    return meta_path


@pytest.mark.parametrize("bad", HOSTILE_GENRES, ids=[repr(g)[:24] for g in HOSTILE_GENRES])
def test_a_model_file_with_an_unusable_genre_name_is_refused_naming_file_and_genre(
    tmp_path: Path, bad: str
) -> None:
    other = "zz" if bad != "zz" else "yy"
    meta_path = _write_model_with_genres(tmp_path / "m", [other, bad])
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "m")
    assert str(meta_path) in str(info.value) and repr(bad) in str(info.value)
    with pytest.raises(ModelError, match="cannot be a folder name"):
        save_model(_tiny_model([other, bad]), tmp_path / "m2")
    assert not (tmp_path / "m2" / "weights.safetensors").exists()


@pytest.mark.parametrize("pair", [["Rock", "rock"], ["Électro", "électro"], ["jazz", "jazz"]])
def test_genres_differing_only_by_case_or_normalisation_are_refused(tmp_path: Path, pair: list[str]) -> None:
    _write_model_with_genres(tmp_path / "m", pair)
    with pytest.raises(ModelError, match="differ only by case|duplicates"):
        load_model(tmp_path / "m")


def test_ordinary_and_unicode_genres_load(tmp_path: Path) -> None:
    _write_model_with_genres(tmp_path / "m", ["hip hop", "Musique québécoise"])
    assert load_model(tmp_path / "m").genres == ["hip hop", "Musique québécoise"]


_any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)
_fs_names = st.binary(min_size=1, max_size=300).map(os.fsdecode)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genre=st.one_of(st.none(), _any_text, _fs_names), name=st.one_of(_any_text, _fs_names),
       confidence=st.floats(allow_nan=True), review_inside=st.booleans())
def test_destination_always_resolves_inside_the_library_or_review(
    genre: str | None, name: str, confidence: float, review_inside: bool
) -> None:
    root = Path(tempfile.gettempdir()) / "genre-daemon-prop"
    library = root / "library"
    review = library / "_review" if review_inside else root / "review"
    source = Path("/in/sub") / name if name not in ("", ".", "..") and "/" not in name and "\0" not in name \
        else Path("/in/sub/x.mp3")
    dest = destination.destination(source, genre, confidence, library=library, review_dir=review, min_confidence=0.5)
    resolved = Path(os.path.normpath(dest))
    top = review if resolved.parent == review else library
    assert resolved.parent.parent == top or resolved.parent == review
    assert resolved.is_relative_to(top) and resolved != top
    assert dest.name not in ("", ".", "..") and "/" not in dest.name and "\0" not in dest.name
    assert len(os.fsencode(dest.name)) <= 255 and len(os.fsencode(dest.parent.name)) <= 255
    if resolved.parent != review:
        assert resolved.parent.parent == library


@pytest.fixture
def label_settings(tmp_path: Path):
    cfg = tmp_path / "config.yaml"
    labelled = tmp_path / "labelled"
    cfg.write_text(
        f"inbox: {tmp_path / 'inbox'}\nlibrary: {tmp_path / 'library'}\nreview_dir: {tmp_path / 'review'}\n"
        f"quarantine_dir: {tmp_path / 'quarantine'}\nstate_dir: {tmp_path / 'state'}\n"
        f"retrain:\n  labelled_dirs: [{labelled}]\n"
    )
    s = load_settings(cfg)
    for folder in (s.inbox, s.library, s.review_dir, s.quarantine_dir, s.state_dir, labelled):
        folder.mkdir(parents=True, exist_ok=True)
    return s


def test_label_scan_never_follows_symlinks_out_of_a_labelled_dir(tmp_path: Path, label_settings) -> None:
    s = label_settings
    labelled = s.retrain.labelled_dirs[0]
    outside = tmp_path / "outside"
    secret = tone(outside / "secret.wav")
    tone(outside / "genre" / "deep.wav")
    (labelled / "jazz").mkdir()
    (labelled / "jazz" / "link.wav").symlink_to(secret)
    (labelled / "jazz" / "sub").symlink_to(outside, target_is_directory=True)
    (labelled / "linked-genre").symlink_to(outside / "genre", target_is_directory=True)
    (labelled / "jazz" / "up").symlink_to(s.library, target_is_directory=True)
    tone(s.library / "rock" / "mine.wav")
    real = tone(labelled / "jazz" / "real.wav")
    with Journal(s.journal_path) as journal:
        labels = scan_labels(s, journal)
    assert sorted(str(lab.path) for lab in labels) == sorted([str(real), str(s.library / "rock" / "mine.wav")])
    assert all(not lab.path.is_relative_to(outside) for lab in labels)


def test_label_folder_names_that_are_not_one_safe_component_never_become_genres(
    tmp_path: Path, label_settings
) -> None:
    s = label_settings
    labelled = s.retrain.labelled_dirs[0]
    for bad in ("-rf", "trailing.", "x" * 250, "tab\there", "\u202eevil", "con"):
        tone(labelled / bad / "a.wav")
    tone(labelled / "Jazz" / "b.wav")
    tone(s.library / "jazz" / "c.wav")
    with Journal(s.journal_path) as journal:
        labels = scan_labels(s, journal)
        assert {lab.genre for lab in labels} == {"Jazz"}  # case variants are one genre, sorted first
        assert {lab.genre for lab in scan_labels(s, journal, known=["jazz"])} == {"jazz"}
    assert len(labels) == 2


# ---------------------------------------------------------------------------------------------
# No pickle, no shell: every module parsed.

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "cloudpickle"}
BANNED_CALLS = {("os", "system"), ("os", "popen"), ("yaml", "load"), ("yaml", "unsafe_load"),
                ("yaml", "full_load"), ("yaml", "load_all"), ("yaml", "unsafe_load_all")}
BANNED_ATTRS = {("yaml", "Loader"), ("yaml", "UnsafeLoader"), ("yaml", "FullLoader")}


def _dotted(node: ast.AST) -> tuple[str, ...]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_constructs(source: str, filename: str = "<src>") -> list[str]:
    """Every banned construct in ``source``, as ``file:line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                found.append(f"{where}: from {node.module} import")
            if node.module == "yaml":
                found += [f"{where}: from yaml import {a.name}" for a in node.names
                          if ("yaml", a.name) in BANNED_CALLS | BANNED_ATTRS]
            if node.module == "os":
                found += [f"{where}: from os import {a.name}" for a in node.names if a.name in ("system", "popen")]
        elif isinstance(node, ast.Attribute) and _dotted(node)[-2:] in BANNED_ATTRS:
            found.append(f"{where}: {'.'.join(_dotted(node))}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            if name[-2:] in BANNED_CALLS:
                found.append(f"{where}: {'.'.join(name)}()")
            if name in (("eval",), ("exec",), ("__import__",)):
                found.append(f"{where}: {name[0]}()")
            if name[-2:] == ("torch", "load") and not _is_true(kw.get("weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
            if name[-1:] == ("load",) and name[:-1] in (("np",), ("numpy",)) and _is_true(kw.get("allow_pickle")):
                found.append(f"{where}: {'.'.join(name)}(allow_pickle=True)")
            if "shell" in kw and not (isinstance(kw["shell"], ast.Constant) and kw["shell"].value is False):
                found.append(f"{where}: shell={ast.unparse(kw['shell'])}")
    return found


def project_sources() -> list[Path]:
    files = sorted((PROJECT_ROOT / "genre_daemon").rglob("*.py"))
    files += sorted((PROJECT_ROOT / "benchmarks").rglob("*.py")) + sorted((PROJECT_ROOT / "scripts").rglob("*.py"))
    return files


def test_no_module_loads_pickles_runs_a_shell_or_evaluates_code() -> None:
    files = project_sources()
    assert len([f for f in files if f.is_relative_to(PROJECT_ROOT / "genre_daemon")]) >= 20
    found = [hit for f in files for hit in unsafe_constructs(f.read_text(encoding="utf-8"), str(f.relative_to(PROJECT_ROOT)))]
    assert found == []


BAD_SNIPPETS = [
    "import pickle", "import cPickle", "from dill import loads", "import joblib.numpy_pickle",
    "torch.load(p)", "torch.load(p, weights_only=False)", "np.load(p, allow_pickle=True)",
    "numpy.load(p, allow_pickle=True)", "yaml.load(t)", "yaml.unsafe_load(t)", "yaml.load(t, Loader=yaml.Loader)",
    "from yaml import unsafe_load", "subprocess.run(c, shell=True)", "subprocess.Popen(c, shell=flag)",
    "os.system('ls')", "os.popen('ls')", "from os import system", "eval('1')", "exec('x = 1')",
]


@pytest.mark.parametrize("snippet", BAD_SNIPPETS)
def test_the_scanner_catches_each_banned_construct(snippet: str) -> None:
    assert unsafe_constructs(snippet) != []


@pytest.mark.parametrize("snippet", ["torch.load(p, weights_only=True)", "np.load(p)", "yaml.safe_load(t)",
                                     "subprocess.run(['ls'], shell=False)", "net.eval()", "import json"])
def test_the_scanner_allows_the_safe_forms(snippet: str) -> None:
    assert unsafe_constructs(snippet) == []


class _Boom:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_a_torch_save_pickle_with_a_payload_in_place_of_the_weights_is_never_executed(tmp_path: Path) -> None:
    """tests/model/test_files.py refuses a plain pickle and a torch.save'd state dict; here a torch.save
    zip whose pickle would run code, in a version directory the daemon would pick up."""
    save_model(_tiny_model(["a", "b"]), tmp_path / "m")
    marker = tmp_path / "pwned"
    torch.save({"x": _Boom(str(marker))}, tmp_path / "m" / "weights.safetensors")
    assert pickle.loads(pickle.dumps(1)) == 1  # the pickle module works: the refusal is ours
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_model(tmp_path / "m")
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Config: roles that would let the daemon eat its own files.


@pytest.mark.parametrize(("edit", "keys"), [
    ({"quarantine_dir": "state"}, ("quarantine_dir", "state_dir", "both are the folder")),
    ({"review_dir": "library"}, ("library", "review_dir", "both are the folder")),
    ({"inbox": "library/in"}, ("inbox", "library", "is inside library")),
    ({"state_dir": "inbox/deep/state"}, ("state_dir", "inbox", "is inside inbox")),
    ({"library": "inbox/library"}, ("library", "inbox", "is inside inbox")),
])
def test_config_roles_that_overlap_are_refused_naming_the_keys(
    tmp_path: Path, edit: dict[str, str], keys: tuple[str, str, str]
) -> None:
    """tests/test_config.py::test_folder_roles_that_clash_are_refused_naming_both covers the
    single clashes; here through the command users run, check-config, with its exit status."""
    folders = {k: k.split("_")[0] for k in ("inbox", "library", "review_dir", "quarantine_dir", "state_dir")}
    folders.update(edit)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("".join(f"{k}: {tmp_path / v}\n" for k, v in folders.items()))
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert all(k in str(info.value) for k in keys) and str(cfg) in str(info.value)
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "check-config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and keys[0] in out.stderr + out.stdout


# ---------------------------------------------------------------------------------------------
# The real daemon.


def _model_genres() -> list[str]:
    return json.loads((default_model_dir() / "model.json").read_text())["genres"]


@needs_model
def test_daemon_never_moves_reads_or_overwrites_through_links(tmp_path: Path) -> None:
    """on_conflict overwrite, everything to review: a symlink to a file and one to a folder in
    the inbox stay; a destination name that is a symlink or a hard link to an outside file is
    replaced, the outside file untouched; a hard link owned by the daemon's user is taken."""
    tree = Tree(tmp_path, min_confidence=1.0, on_conflict="overwrite")
    outside = tmp_path / "outside"
    secret = tone(outside / "secret.wav", freq=200)
    tone(outside / "album" / "inside.wav", freq=250)
    victim = put(outside / "victim.wav", b"victim")
    victim2 = put(outside / "victim2.wav", b"victim2")
    own = tone(outside / "own.wav", freq=330)
    tree.review.mkdir(parents=True)
    (tree.review / "own.wav").symlink_to(victim)
    os.link(victim2, tree.review / "fresh.wav")
    (tree.inbox / "link.wav").symlink_to(secret)
    (tree.inbox / "album").symlink_to(outside / "album", target_is_directory=True)
    os.link(own, tree.inbox / "own.wav")
    fresh = tone(tree.inbox / "fresh.wav", freq=660)
    fresh_bytes = fresh.read_bytes()
    tree.start()
    try:
        def done() -> bool:
            placed = [tree.review / "own.wav", tree.review / "fresh.wav"]
            return all(p.exists() and not p.is_symlink() and os.lstat(p).st_ino not in
                       (os.stat(victim).st_ino, os.stat(victim2).st_ino) for p in placed)
        wait_for(done, 60, "both files in review, replacing the planted names")
        assert len(tree.history()) == 2  # the two files, nothing through the inbox symlinks
    finally:
        assert tree.stop() == 0
    assert victim.read_bytes() == b"victim" and victim2.read_bytes() == b"victim2"
    assert os.stat(victim2).st_nlink == 1
    assert (tree.review / "fresh.wav").read_bytes() == fresh_bytes
    assert os.path.samefile(tree.review / "own.wav", own)  # moved by renaming its inbox name
    assert own.exists() and secret.exists() and (outside / "album" / "inside.wav").exists()
    assert (tree.inbox / "link.wav").is_symlink() and (tree.inbox / "album").is_symlink()
    markers = {".ignore", ".ndignore", ".plexignore"}  # the media servers' (docs/media-servers.md)
    assert sorted(n for n in os.listdir(tree.review) if n not in markers) == ["fresh.wav", "own.wav"]
    assert sorted(p.name for p in outside.rglob("*")) == ["album", "inside.wav", "own.wav", "secret.wav",
                                                           "victim.wav", "victim2.wav"]


@needs_model
def test_daemon_never_places_into_a_symlinked_genre_folder(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    outside = tmp_path / "outside"
    tree.library.mkdir()
    for genre in _model_genres():
        (outside / genre).mkdir(parents=True)
        (tree.library / genre).symlink_to(outside / genre, target_is_directory=True)
    song = tone(tree.inbox / "song.wav")
    data = song.read_bytes()
    tree.start()
    try:
        wait_for(lambda: "symbolic link" in tree.log.read_text(errors="replace"), 60,
                 "the daemon to refuse the symlinked genre folder")
    finally:
        assert tree.stop() == 0
    assert song.read_bytes() == data  # left safe in the inbox
    assert [p for p in outside.rglob("*") if p.is_file()] == []
    assert "left in the inbox" in tree.log.read_text(errors="replace")


@needs_model
@pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root (chown)")
def test_daemon_quarantines_a_foreign_hard_link_unread(tmp_path: Path) -> None:
    """A hard link to a file of another user (uid 65534, mode 0600) dropped into the inbox: not
    read, not classified; it goes to quarantine (the other name untouched) with the link count."""
    tree = Tree(tmp_path)
    private = tone(tmp_path / "outside" / "private.wav")
    os.chown(private, NOBODY, NOBODY)
    os.chmod(private, 0o600)
    os.link(private, tree.inbox / "private.wav")
    tree.start()
    try:
        reason_file = tree.quarantine / ("private.wav" + mover.REASON_SUFFIX)
        # Either outcome ends the wait: a wrong one (classified and placed) fails at once.
        wait_for(lambda: reason_file.exists() or tree.placed(), 30, "the hard link in quarantine or placed")
    finally:
        assert tree.stop() == 0
    assert tree.placed() == [], "the foreign hard link was read and classified"
    assert "2 links" in reason_file.read_text()
    assert tree.placed() == [] and private.exists() and os.stat(private).st_uid == NOBODY
    assert os.path.samefile(private, tree.quarantine / "private.wav")


def _world_bits(root: Path, mask: int) -> dict[str, str]:
    """Every file or folder under ``root`` (itself included, links not followed) with ``mask``."""
    out = {}
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & mask:
            out[str(path)] = oct(stat.S_IMODE(st.st_mode))
    return out


@needs_model
def test_daemon_under_umask_0_creates_nothing_world_writable(tmp_path: Path) -> None:
    """The daemon started with umask 0 through a full cycle: a placed file, a quarantined one
    with its reason file, one in review (after a SIGHUP raising min_confidence), its status
    file, journal, lock and a model version. Nothing it made under state_dir, the library,
    review or quarantine is world-writable; nothing in state_dir is world-readable (version
    directories excepted: tests/learning/test_versions.py asks for 0755 there, behind a 0700 state_dir)."""
    tree = Tree(tmp_path, quarantine_dir=str(tmp_path / "quarantine"))
    tree.quarantine = tmp_path / "quarantine"
    tone(tmp_path / "drop" / "a.wav", freq=300)
    (tmp_path / "drop" / "text.mp3").write_text("not audio\n" * 100)
    tree.proc = subprocess.Popen(
        [sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(tree.config)],
        stdout=subprocess.DEVNULL, stderr=open(tree.log, "ab"), umask=0,
    )
    try:
        wait_for(lambda: (tree.state / "daemon.json").exists() or tree.proc.poll() is not None, 60, "start")
        assert tree.proc.poll() is None, tree.log.read_text()
        for name in ("a.wav", "text.mp3"):
            shutil.copy(tmp_path / "drop" / name, tree.inbox / name)
        wait_for(lambda: len(tree.placed()) == 1 and len(list(tree.quarantine.glob("*.reason.txt"))) == 1,
                 60, "one placed, one quarantined")
        tree.settings["min_confidence"] = 1.0
        tree.write_config()
        tree.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in tree.log.read_text(errors="replace"), 30, "the reload")
        tone(tree.inbox / "b.wav", freq=800)
        wait_for(lambda: (tree.review / "b.wav").exists(), 60, "b.wav in review")
        seed = ("from pathlib import Path; from genre_daemon.learning.versions import ModelStore, seed_default; "
                f"seed_default(ModelStore(Path({str(tree.state / 'models')!r})), Path({str(default_model_dir())!r}))")
        subprocess.run([sys.executable, "-c", seed], check=True, timeout=120, umask=0)
        writable = {**_world_bits(tree.state, 0o002), **_world_bits(tree.library, 0o002),
                    **_world_bits(tree.quarantine, 0o002)}
        readable = {p: m for p, m in _world_bits(tree.state, 0o004).items()
                    if not Path(p).is_relative_to(tree.state / "models")}
        assert (tree.state / "daemon.json").exists() and (tree.state / "daemon.lock").exists()
        assert list((tree.state / "models").glob("v0001/model.json"))
    finally:
        assert tree.stop() == 0
    assert writable == {}
    assert readable == {}
    assert stat.S_IMODE(os.stat(tree.state).st_mode) == 0o700


def test_a_refused_hard_link_is_never_copied_to_quarantine_on_another_filesystem(tmp_path: Path, shm: Path) -> None:
    """Quarantining a foreign hard link must not read it: where only a copy could move it (the
    quarantine on another filesystem), it stays in the inbox, unread, with an EXDEV error."""
    inbox_file = put(shm / "inbox" / "x.mp3", b"secret")
    before = os.stat(inbox_file)
    with pytest.raises(mover.MoveError) as err:
        mover.quarantine(inbox_file, tmp_path / "quarantine", "a foreign hard link", copy=False)
    assert err.value.errno == errno.EXDEV
    assert inbox_file.read_bytes() == b"secret" and os.stat(inbox_file).st_ino == before.st_ino
    assert not [p for p in (tmp_path / "quarantine").rglob("*") if p.is_file()]
