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

from genre_daemon import dataset
from genre_daemon.dataset import LabelledFile, build_clips
from genre_daemon.featcache import FeatureCache, recipe_key, round_trip
from genre_daemon.features import FeatureParams
from genre_daemon.journal import content_hash

H1 = "sha256:" + "ab" * 32
H2 = "sha256:" + "cd" * 32
RECIPE = recipe_key(FeatureParams(), (), -40.0)


def _variants(seed: int = 0, frames: int = 50) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((frames - i, 33)) * 100).astype(np.float32) for i in range(3)]


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
    base = recipe_key(FeatureParams(), ("sr16k", "mp3"), -40.0)
    assert base == recipe_key(FeatureParams(), ["sr16k", "mp3"], -40.0)  # stable
    others = {
        recipe_key(FeatureParams(), ("mp3", "sr16k"), -40.0),  # variant order
        recipe_key(FeatureParams(), ("sr16k",), -40.0),
        recipe_key(FeatureParams(), ("sr16k", "mp3"), None),
        recipe_key(FeatureParams(), ("sr16k", "mp3"), -30.0),
        recipe_key(FeatureParams(n_mels=64), ("sr16k", "mp3"), -40.0),
    }
    assert base not in others and len(others) == 5
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
    with caplog.at_level(logging.WARNING, logger="genre_daemon.featcache"):
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
        cache.put(H1, RECIPE, [np.zeros((5, 33)), np.full((5, 33), np.nan)])
    assert len(cache) == 0


# --- build_clips with a cache -----------------------------------------------------------------

@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every real decode build_clips makes, in order."""
    seen: list[Path] = []
    real = dataset.load_training_audio

    def counting(path, sr, min_seconds):  # type: ignore[no-untyped-def]
        seen.append(Path(path))
        return real(path, sr, min_seconds)

    monkeypatch.setattr(dataset, "load_training_audio", counting)
    return seen


@pytest.fixture
def labelled(tmp_path: Path) -> list[LabelledFile]:
    files = []
    for g, genre in enumerate(["low", "high"]):
        for i in range(2):
            p = write_tone(tmp_path / "data" / genre / f"{i}.wav", 1.5, freq=200.0 * (g + 1) * (i + 2))
            files.append(LabelledFile(p, genre))
    return files


def test_build_clips_decodes_each_file_once(cache: FeatureCache, labelled: list[LabelledFile], decodes: list[Path]) -> None:
    params, genres = FeatureParams(), ["high", "low"]
    first, fail1 = build_clips(labelled, genres, params, ("sr11k",), 1.0, -40.0, cache=cache)
    assert fail1 == [] and len(decodes) == 4 and len(cache) == 4
    second, fail2 = build_clips(labelled, genres, params, ("sr11k",), 1.0, -40.0, cache=cache)
    assert fail2 == [] and len(decodes) == 4  # all from the cache
    for a, b in zip(first, second):
        assert (a.name, a.label, len(a.variants)) == (b.name, b.label, 2)
        for va, vb in zip(a.variants, b.variants):
            np.testing.assert_array_equal(va, vb)  # a miss and a hit give the same numbers
    uncached, _ = build_clips(labelled[:1], genres, params, ("sr11k",), 1.0, -40.0)
    np.testing.assert_allclose(uncached[0].variants[0], first[0].variants[0], rtol=2e-3, atol=2e-2)


def test_cache_follows_content_not_names(cache: FeatureCache, labelled: list[LabelledFile], decodes: list[Path],
                                         tmp_path: Path) -> None:
    params, genres = FeatureParams(), ["high", "low"]
    build_clips(labelled, genres, params, (), 1.0, -40.0, cache=cache)
    moved = tmp_path / "library" / "high" / "renamed.wav"
    moved.parent.mkdir(parents=True)
    os.replace(labelled[0].path, moved)  # the user moves a file: its features are still cached
    clips, _ = build_clips([LabelledFile(moved, "high")], genres, params, (), 1.0, -40.0, cache=cache)
    assert len(decodes) == 4 and clips[0].label == 0 and clips[0].name == str(moved)
    write_tone(moved, 1.5, freq=1234.0)  # edited content: decoded again
    build_clips([LabelledFile(moved, "high")], genres, params, (), 1.0, -40.0, cache=cache)
    assert decodes[-1] == moved and len(decodes) == 5
    build_clips(labelled[1:2], genres, params, ("sr11k",), 1.0, -40.0, cache=cache)  # new recipe: decoded
    assert len(decodes) == 6
    assert content_hash(moved) != content_hash(labelled[1].path)


def test_cached_clip_shorter_than_asked_is_still_a_failure(cache: FeatureCache, labelled: list[LabelledFile],
                                                           decodes: list[Path]) -> None:
    params, genres = FeatureParams(), ["high", "low"]
    build_clips(labelled[:1], genres, params, (), 1.0, -40.0, cache=cache)
    clips, failures = build_clips(labelled[:1], genres, params, (), 3.0, -40.0, cache=cache)
    assert clips == [] and len(failures) == 1 and "3.00 s" in failures[0][1]
    assert len(decodes) == 1


def test_unreadable_file_is_a_failure_not_a_crash(cache: FeatureCache, labelled: list[LabelledFile], tmp_path: Path) -> None:
    link = tmp_path / "data" / "low" / "link.wav"
    link.symlink_to(labelled[0].path)
    clips, failures = build_clips([LabelledFile(link, "low"), labelled[1]], ["high", "low"], FeatureParams(),
                                  (), 1.0, -40.0, cache=cache)
    assert len(clips) == 1 and failures[0][0] == link and "cannot read" in failures[0][1]


def test_a_cache_that_cannot_be_written_costs_only_a_decode(cache: FeatureCache, labelled: list[LabelledFile],
                                                            decodes: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    key = content_hash(labelled[0].path)
    blocker = cache.path(key, RECIPE).parent
    blocker.write_bytes(b"")  # a file where the entry's folder should be: every put fails
    with caplog.at_level(logging.WARNING, logger="genre_daemon.dataset"):
        clips, failures = build_clips(labelled[:1], ["high", "low"], FeatureParams(), (), 1.0, -40.0, cache=cache)
    assert len(clips) == 1 and failures == [] and len(cache) == 0
    assert "cannot store" in caplog.text
