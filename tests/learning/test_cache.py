"""The feature cache: real safetensors files in tmp_path, real decodes counted, no pickles ever."""

from __future__ import annotations

import logging
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tone

from genre_daemon.learning import dataset
from genre_daemon.learning.dataset import LabelledFile, build_clips
from genre_daemon.learning.cache import FeatureCache, recipe_key, round_trip, tagger_recipe
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd, load_embedder
from genre_daemon.filing.journal import content_hash

H1 = "sha256:" + "ab" * 32
H2 = "sha256:" + "cd" * 32
FRONTEND = FrontEnd.from_directory(DEFAULT_INPUTS)
HOP = 94
RECIPE = recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, ())


def _variants(seed: int = 0, frames: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((frames - i, 250)) * 3).astype(np.float32) for i in range(3)]


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(tmp_path / "state" / "features")


def test_round_trip_gives_back_every_variant_in_order(cache: FeatureCache) -> None:
    stored = _variants()
    cache.put(H1, RECIPE, stored)
    got = cache.get(H1, RECIPE)
    assert got is not None and len(got) == 3
    for want, have in zip(round_trip(stored), got):
        assert have.dtype == np.float32 and have.shape == want.shape
        np.testing.assert_array_equal(have, want)
    np.testing.assert_allclose(got[0], stored[0], rtol=1e-3, atol=1e-3)  # float16 storage
    assert len(cache) == 1
    assert (H1, RECIPE) in cache


def test_root_is_private_and_no_temporary_file_is_left(cache: FeatureCache) -> None:
    cache.put(H1, RECIPE, _variants())
    assert stat.S_IMODE(cache.root.stat().st_mode) == 0o700
    leftovers = [p for p in cache.root.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []
    assert cache.path(H1, RECIPE).relative_to(cache.root).parts == ("ab", "ab" * 32 + f"-{RECIPE}.safetensors")


def test_miss_on_unknown_content(cache: FeatureCache) -> None:
    assert cache.get(H1, RECIPE) is None
    cache.put(H1, RECIPE, _variants())
    assert cache.get(H2, RECIPE) is None
    assert len(cache) == 1


def test_recipe_key_changes_with_everything_that_changes_the_features(cache: FeatureCache) -> None:
    base = recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, ("sr11k", "mp3"))
    assert base == recipe_key(FRONTEND, list(DEFAULT_INPUTS), HOP, ["sr11k", "mp3"])  # stable
    other_weights = FrontEnd(nets=(("msd", "0" * 64),))  # another msd.safetensors: another embedding space
    others = {
        recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, ("mp3", "sr11k")),  # variant order
        recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, ("sr11k",)),
        recipe_key(FRONTEND, DEFAULT_INPUTS, 62, ("sr11k", "mp3")),
        recipe_key(FRONTEND, ("msd_penultimate",), HOP, ("sr11k", "mp3")),
        recipe_key(FRONTEND, ("msd_tags", "msd_penultimate"), HOP, ("sr11k", "mp3")),  # concatenation order
        recipe_key(other_weights, DEFAULT_INPUTS, HOP, ("sr11k", "mp3")),
    }
    assert base not in others and len(others) == 6
    cache.put(H1, base, _variants())
    for other in others:
        assert cache.get(H1, other) is None
    assert cache.get(H1, base) is not None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "header_only"])
def test_corrupt_entry_is_a_miss_and_is_removed(cache: FeatureCache, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    cache.put(H1, RECIPE, _variants())
    path = cache.path(H1, RECIPE)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b"",
                      "header_only": data[:8]}[damage])
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.cache"):
        assert cache.get(H1, RECIPE) is None
    assert not path.exists()
    assert str(path) in caplog.text
    cache.put(H1, RECIPE, _variants())  # and it can be stored again
    assert cache.get(H1, RECIPE) is not None


def test_an_entry_moved_to_another_key_is_refused(cache: FeatureCache) -> None:
    cache.put(H1, RECIPE, _variants())
    other = cache.path(H2, RECIPE)
    other.parent.mkdir(parents=True)
    other.write_bytes(cache.path(H1, RECIPE).read_bytes())
    assert cache.get(H2, RECIPE) is None
    assert not other.exists()


class _Exploit:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (self.marker.touch, ())


def test_a_pickle_in_place_of_an_entry_is_never_executed(cache: FeatureCache, tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Exploit(proof)))
    assert proof.exists()  # the payload works when unpickled...
    proof.unlink()
    marker = tmp_path / "executed"
    path = cache.path(H1, RECIPE)
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(_Exploit(marker)))
    assert cache.get(H1, RECIPE) is None
    assert not marker.exists()  # ...and the cache never unpickled it
    assert not path.exists()
    npy = tmp_path / "x.npy"
    np.save(npy, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    path.write_bytes(npy.read_bytes())
    assert cache.get(H1, RECIPE) is None
    assert not marker.exists()


def test_a_symlink_in_place_of_an_entry_is_not_followed(cache: FeatureCache, tmp_path: Path) -> None:
    elsewhere = FeatureCache(tmp_path / "other")
    elsewhere.put(H1, RECIPE, _variants())
    target = elsewhere.path(H1, RECIPE)
    link = cache.path(H1, RECIPE)
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    assert cache.get(H1, RECIPE) is None
    assert not os.path.lexists(link)
    assert target.is_file()  # the link was dropped, never what it pointed to


@pytest.mark.parametrize("key", ["sha256:../../etc/passwd", "sha256:", "ABCDEF" * 8, "sha256:" + "g" * 64, "/tmp/x"])
def test_a_key_that_is_not_a_hash_never_becomes_a_path(cache: FeatureCache, key: str) -> None:
    with pytest.raises(ValueError, match="not a content hash"):
        cache.get(key, RECIPE)
    with pytest.raises(ValueError, match="not a recipe key"):
        cache.put(H1, "../x", _variants())


def test_put_refuses_nonsense(cache: FeatureCache) -> None:
    with pytest.raises(ValueError):
        cache.put(H1, RECIPE, [])
    with pytest.raises(ValueError, match="variant 1"):
        cache.put(H1, RECIPE, [np.zeros((5, 250)), np.full((5, 250), np.nan)])
    assert len(cache) == 0


# --- build_clips with a cache -----------------------------------------------------------------

GENRES = ["high", "low"]


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    return load_embedder(FRONTEND, DEFAULT_INPUTS)


def _build(files: list[LabelledFile], embedder, augment: tuple[str, ...] = (), cache: FeatureCache | None = None):  # type: ignore[no-untyped-def]
    return build_clips(files, GENRES, embedder, FRONTEND, HOP, augment, cache=cache)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every real decode build_clips makes, in order (the real decoder runs; it is only counted)."""
    seen: list[Path] = []
    real = dataset.load_training_audio

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dataset, "load_training_audio", counting)
    return seen


@pytest.fixture
def labelled(tmp_path: Path) -> list[LabelledFile]:
    files = []
    for g, genre in enumerate(["low", "high"]):
        for i in range(2):
            p = write_tone(tmp_path / "data" / genre / f"{i}.wav", 3.2, freq=200.0 * (g + 1) * (i + 2))
            files.append(LabelledFile(p, genre))
    return files


def test_build_clips_decodes_each_file_once(cache: FeatureCache, labelled: list[LabelledFile], decodes: list[Path],
                                            embedder) -> None:  # type: ignore[no-untyped-def]
    first, fail1 = _build(labelled, embedder, ("sr11k",), cache)
    assert fail1 == [] and len(decodes) == 4 and len(cache) == 4
    second, fail2 = _build(labelled, embedder, ("sr11k",), cache)
    assert fail2 == [] and len(decodes) == 4  # all from the cache
    for a, b in zip(first, second):
        assert (a.name, a.label, len(a.variants)) == (b.name, b.label, 2)
        for va, vb in zip(a.variants, b.variants):
            assert va.shape == (1, 250)  # 3.2 s: one patch
            np.testing.assert_array_equal(va, vb)  # a miss and a hit give the same numbers
    uncached, _ = _build(labelled[:1], embedder)
    np.testing.assert_allclose(uncached[0].variants[0], first[0].variants[0], rtol=2e-3, atol=2e-3)


def test_cache_follows_content_not_names(cache: FeatureCache, labelled: list[LabelledFile], decodes: list[Path],
                                         tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    _build(labelled, embedder, (), cache)
    moved = tmp_path / "library" / "high" / "renamed.wav"
    moved.parent.mkdir(parents=True)
    os.replace(labelled[0].path, moved)  # the user moves a file: its features are still cached
    clips, _ = _build([LabelledFile(moved, "high")], embedder, (), cache)
    assert len(decodes) == 4 and clips[0].label == 0 and clips[0].name == str(moved)
    write_tone(moved, 3.2, freq=1234.0)  # edited content: decoded again
    _build([LabelledFile(moved, "high")], embedder, (), cache)
    assert decodes[-1] == moved and len(decodes) == 5
    _build(labelled[1:2], embedder, ("sr11k",), cache)  # new recipe: decoded
    assert len(decodes) == 6
    assert content_hash(moved) != content_hash(labelled[1].path)


def test_a_file_shorter_than_a_patch_is_a_failure(cache: FeatureCache, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    short = LabelledFile(write_tone(tmp_path / "data" / "low" / "short.wav", 1.5), "low")
    clips, failures = _build([short], embedder, (), cache)
    assert clips == [] and len(failures) == 1 and "short.wav" in str(failures[0][0])
    assert len(cache) == 0


def test_unreadable_file_is_a_failure_not_a_crash(cache: FeatureCache, labelled: list[LabelledFile], tmp_path: Path,
                                                  embedder) -> None:  # type: ignore[no-untyped-def]
    link = tmp_path / "data" / "low" / "link.wav"
    link.symlink_to(labelled[0].path)
    clips, failures = _build([LabelledFile(link, "low"), labelled[1]], embedder, (), cache)
    assert len(clips) == 1 and failures[0][0] == link and "cannot read" in failures[0][1]


def test_a_cache_that_cannot_be_written_costs_only_a_decode(cache: FeatureCache, labelled: list[LabelledFile],
                                                            decodes: list[Path], caplog: pytest.LogCaptureFixture,
                                                            embedder) -> None:  # type: ignore[no-untyped-def]
    key = content_hash(labelled[0].path)
    blocker = cache.path(key, RECIPE).parent
    blocker.write_bytes(b"")  # a file where the entry's folder should be: every put fails
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.dataset"):
        clips, failures = _build(labelled[:1], embedder, (), cache)
    assert len(clips) == 1 and failures == [] and len(cache) == 0
    assert "cannot store" in caplog.text


# --- AudioSet's window logits beside the vectors (format-3 models) ------------------------------

TAGGER_ID = {"weights_sha256": "e6" * 32, "name": "efficientat-mn04"}


def test_the_recipe_names_the_tagger_and_its_windows() -> None:
    with_tagger = recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, (), tagger_recipe(TAGGER_ID, 3))
    assert with_tagger == recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, (), tagger_recipe(dict(TAGGER_ID), 3))
    others = {
        recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, ()),  # musicnn only (a format-2 model): its old key
        recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, (), tagger_recipe(TAGGER_ID, 2)),
        recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, (), tagger_recipe({"weights_sha256": "00" * 32}, 3)),
    }
    assert with_tagger not in others and len(others) == 3
    assert RECIPE == recipe_key(FRONTEND, DEFAULT_INPUTS, HOP, (), None)


def test_window_logits_are_kept_exactly_beside_the_vectors(cache: FeatureCache) -> None:
    logits = (np.random.default_rng(3).standard_normal((3, 527)) * 7).astype(np.float32)
    cache.put(H1, RECIPE, _variants(), logits)
    cache.put(H2, RECIPE, _variants(1))
    variants, got = cache.entry(H1, RECIPE)
    assert got is not None and got.dtype == np.float32
    np.testing.assert_array_equal(got, logits)  # float32: the gate scores a file as inference does
    assert len(variants) == 3 and len(cache.get(H1, RECIPE)) == 3
    assert cache.entry(H2, RECIPE)[1] is None  # no logits stored (audio too short for the tagger)
    with pytest.raises(ValueError, match="logits"):
        cache.put(H1, RECIPE, _variants(), np.full((3, 527), np.inf, np.float32))
    with pytest.raises(ValueError, match="logits"):
        cache.put(H1, RECIPE, _variants(), np.zeros(527, np.float32))


def test_build_clips_with_the_tagger_reads_the_logits_from_the_cache_next_time(
        cache: FeatureCache, labelled: list[LabelledFile], decodes: list[Path], embedder,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    from genre_daemon.audio import decode as audio
    from genre_daemon.model.tagging import Tagger, load_tagger

    tagger = load_tagger()
    tagged: list[Path] = []
    real = Tagger.file_logits

    def counting(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        tagged.append(Path(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Tagger, "file_logits", counting)
    first, _ = build_clips(labelled, GENRES, embedder, FRONTEND, HOP, (), cache=cache, tagger=tagger, windows=2)
    assert len(decodes) == len(tagged) == 4 and len(cache) == 4
    again, _ = build_clips(labelled, GENRES, embedder, FRONTEND, HOP, (), cache=cache, tagger=tagger, windows=2)
    assert len(decodes) == len(tagged) == 4  # both front ends' outputs came from the cache
    want = real(tagger, labelled[0].path, audio.probe(labelled[0].path).duration, 2, 60.0)
    for clip in (first[0], again[0]):
        assert clip.logits is not None and clip.logits.shape == (want.shape[0], 527)
        np.testing.assert_array_equal(clip.logits, want)  # exactly what inference reads
    plain, _ = _build(labelled[:1], embedder, (), cache)  # the musicnn-only recipe: no logits, decoded again
    assert plain[0].logits is None and len(decodes) == 5
