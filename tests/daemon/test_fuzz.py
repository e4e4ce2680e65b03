"""Hostile input: malformed and adversarial files through the decoder, the classifier and the
real daemon.

The contract, for every input: ``audio.load`` and the shipped model's ``Classifier.classify``
return a valid result (finite mono float32; finite probabilities summing to 1), or raise
``AudioDecodeError`` naming the file and a reason; never another exception. The daemon puts
every such file in quarantine with ``<name>.reason.txt`` and keeps running. Inputs are recipes
from ``tests/fuzzinputs.py`` (shared with ``benchmarks/fuzz.py``, which runs 10,000 of them):
an explicit example of every hostile kind always runs, then a fixed, derandomized hypothesis
run over random mutations of real encodings.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import struct
from pathlib import Path

import fuzzinputs as fz
import numpy as np
import pytest
from conftest import write_tone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Tree, wait_for

from genre_daemon.audio import decode as audio
from genre_daemon.resources import default_model_dir
from genre_daemon.errors import AudioDecodeError
from genre_daemon.model.inference import Classifier

pytestmark = pytest.mark.skipif(not (default_model_dir() / "model.json").is_file(), reason="no shipped model")

# What the classifier must say about each explicit example: a regex its AudioDecodeError reason
# must match, or None where real audio survives the damage and a valid result is right too
# (ffmpeg reads an m4a's sample table rather than its header duration; an mp3 decoder resyncs
# past leading garbage, as players do).
EXPECTED: dict[str, str | None] = {
    "truncated_mid_frame_wav": r"^truncated",
    "truncated_mid_frame_flac": r"truncated",
    "truncated_mid_frame_mp3": r"^truncated",
    "truncated_m4a": r"truncated",
    "truncated_ogg": r"truncated|corrupt|malformed|not an audio file",
    "header_flipped_bits_wav": r"channels",
    "riff_and_data_claim_4gb": r"^truncated: the header declares",
    "wav_claims_10_hours": r"^truncated: the header declares 36000",
    "flac_claims_10_hours": r"truncated",
    "mp3_claims_10_hours": r"truncated",
    "m4a_claims_10_hours": None,
    "zero_channels_wav": r"channel",
    "zero_channels_au": r"channels",
    "channels_65535_wav": r"channels",
    "channels_65535_au": r"channels",
    "rate_0_wav": r"sample rate",
    "rate_1_wav": r"sample rate of 1 Hz",
    "rate_4e9_wav": r"sample rate",
    "rate_1_au": r"sample rate of 1 Hz",
    "nan_float_wav": r"non-finite samples",
    "inf_float_wav": r"non-finite samples",
    "some_nan_float_wav": r"non-finite samples",
    "float_wav_samples_1e31": r"impossible magnitude \(7\.21e\+31",
    "zip_renamed_mp3": r"ZIP archive",
    "random_bytes_mp3": r"not an audio file",
    "empty_file": r"empty",
    "wav_header_only": r"holds none",
    "flac_header_only": r"truncated",
    "m4a_header_only": r"truncated or incomplete",
    "id3_tag_only": r"not an audio file|no audio",
    "garbage_then_wav": r"not an audio file",
    "garbage_then_mp3": None,
    "text_named_mp3": r"text file",
}

NEEDS_FFMPEG = ("mp3", "m4a")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    c = Classifier.from_dir(default_model_dir())
    c.warm_up()
    return c


@pytest.fixture(scope="module")
def pool() -> fz.Seeds:
    return fz.seeds()


def _need(recipe: fz.Recipe, pool: fz.Seeds) -> None:
    if recipe.seed not in pool:
        pytest.skip(f"seed {recipe.seed} needs ffmpeg, which is not installed")


def test_every_hostile_kind_has_an_expectation() -> None:
    assert set(EXPECTED) == set(fz.HOSTILE)


@pytest.mark.parametrize("kind", list(fz.HOSTILE))
def test_hostile_kind_gives_a_result_or_a_named_reason(
    kind: str, classifier: Classifier, pool: fz.Seeds, tmp_path: Path
) -> None:
    recipe = fz.HOSTILE[kind]
    _need(recipe, pool)
    path = fz.write(recipe, pool, tmp_path, kind)
    load_out, classify_out = fz.check_input(path, classifier)  # raises on any other exception
    expected = EXPECTED[kind]
    if expected is not None:
        assert classify_out.startswith("error: "), f"{kind} was classified: {recipe}"
        assert re.search(expected, classify_out[7:]), f"{kind}: {classify_out}"
        assert load_out.startswith("error: "), f"{kind} decoded: {recipe}"


def test_seeds_are_valid_audio_that_classifies(classifier: Classifier, pool: fz.Seeds, tmp_path: Path) -> None:
    """The mutations start from real, decodable encodings (else the fuzzer tests nothing)."""
    assert {"tone_wav16", "tone_wavf32", "tone_flac", "tone_ogg", "tone_au"} <= set(pool.valid)
    for name in pool.valid:
        path = fz.write(fz.Recipe(name, pool.ext[name]), pool, tmp_path, name)
        assert fz.check_input(path, classifier) == ["ok", "ok"], name


# A fixed, derandomized run: the same inputs every time (CI), no example database.
@settings(derandomize=True, deadline=None, max_examples=150, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_inputs_never_crash_or_leak(
    data: st.DataObject, classifier: Classifier, pool: fz.Seeds, tmp_path_factory: pytest.TempPathFactory
) -> None:
    recipe = data.draw(fz.recipes(pool), label="recipe")
    path = fz.write(recipe, pool, tmp_path_factory.getbasetemp(), "fuzzed")
    try:
        fz.check_input(path, classifier)
    finally:
        path.unlink(missing_ok=True)


def test_fuzzing_keeps_memory_bounded(classifier: Classifier, pool: fz.Seeds, tmp_path: Path) -> None:
    """Inputs whose headers claim hours, gigabytes or thousands of channels allocate nothing
    for the claim: peak RSS over all of them grows by far less than one claimed span would take
    (10 hours at 22050 Hz is 3.2 GB of float32)."""
    claims = [k for k in fz.HOSTILE if "claim" in k or "channels" in k or "rate" in k]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for kind in claims:
        if fz.HOSTILE[kind].seed in pool:
            fz.check_input(fz.write(fz.HOSTILE[kind], pool, tmp_path, kind), classifier)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert grown < 300, f"peak RSS grew by {grown:.0f} MB"


# ------------------------------------------------------------------------------------------
# The header caps that bound the in-process (libsndfile) path
# ------------------------------------------------------------------------------------------


def _wav_with(tmp_path: Path, name: str, *, rate: int | None = None, channels: int = 1) -> Path:
    """A 16-bit wav of a tone whose header is then given another rate (same samples)."""
    path = write_tone(tmp_path / name, 3.5, 22050, channels)
    if rate is not None:
        raw = bytearray(path.read_bytes())
        struct.pack_into("<II", raw, 24, rate, rate * 2 * channels)
        path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("rate", [999, 768_001, 2_000_000])
def test_sample_rate_outside_the_caps_is_refused_before_decoding(tmp_path: Path, rate: int) -> None:
    path = _wav_with(tmp_path, "odd.wav", rate=rate)
    for call in (audio.probe, audio.load):
        with pytest.raises(AudioDecodeError) as e:
            call(path)
        assert e.value.path == str(path)
        assert f"sample rate of {rate} Hz" in e.value.reason


@pytest.mark.parametrize("rate", [1000, 8000, 768_000])
def test_sample_rates_at_the_caps_still_decode(tmp_path: Path, rate: int) -> None:
    path = _wav_with(tmp_path, "edge.wav", rate=rate)
    y = audio.load(path, max_seconds=100_000)
    assert len(y) == pytest.approx(round(3.5 * 22050 * 22050 / rate), abs=2)


def test_many_channels_decode_with_a_bounded_block_and_too_many_are_refused(tmp_path: Path) -> None:
    import soundfile as sf

    frames = 22050 * 3
    tone = np.sin(2 * np.pi * 440 * np.arange(frames) / 22050).astype(np.float32) * 0.5
    ok = tmp_path / "ambi.wav"
    sf.write(str(ok), np.repeat(tone[:, None], audio.MAX_CHANNELS, axis=1), 22050, subtype="PCM_16")
    y = audio.load(ok)
    assert len(y) == frames and np.allclose(y, tone, atol=1e-3)
    many = tmp_path / "many.wav"
    sf.write(str(many), np.zeros((4000, audio.MAX_CHANNELS + 1), np.float32), 22050, subtype="PCM_16")
    with pytest.raises(AudioDecodeError, match=f"{audio.MAX_CHANNELS + 1} channels, more than"):
        audio.load(many)


# ------------------------------------------------------------------------------------------
# The real daemon, one file of every hostile kind dropped at once
# ------------------------------------------------------------------------------------------


def test_daemon_quarantines_every_hostile_file_and_stays_up(
    tmp_path: Path, classifier: Classifier, pool: fz.Seeds
) -> None:
    (tmp_path / "t").mkdir()
    tree = Tree(tmp_path / "t")
    staging = tmp_path / "staging"
    staging.mkdir()
    expected_bad, expected_ok = set(), set()
    for kind, recipe in fz.HOSTILE.items():
        if recipe.seed not in pool:
            continue
        path = fz.write(recipe, pool, staging, kind)
        # What the daemon must do with it is what the classifier says in-process.
        outcome = fz.check_input(path, classifier)[1]
        (expected_bad if outcome.startswith("error") else expected_ok).add(path.name)
    assert len(expected_bad) >= 25
    tree.start()
    try:
        for path in sorted(staging.iterdir()):  # dropped at once: renames into the inbox
            os.rename(path, tree.inbox / path.name)
        # Truncated files written moments ago may still be arriving (issue 10, D1): they wait in
        # the inbox for the grace period (60 s here), then go to quarantine like the rest.
        wait_for(lambda: len(tree.quarantined()) == len(expected_bad)
                 and len(list(tree.quarantine.glob("*.reason.txt"))) == len(expected_bad)
                 and len(tree.placed()) == len(expected_ok) and not tree.in_inbox(),
                 180, f"{len(expected_bad)} files in quarantine with reasons, {len(expected_ok)} placed")
        assert "left in the inbox while it may still be arriving" in tree.log.read_text()
        assert tree.proc is not None and tree.proc.poll() is None, "the daemon died"
        assert {p.name for p in tree.quarantined()} == expected_bad
        assert {p.name for p in tree.placed()} == expected_ok
        for f in tree.quarantined():
            note = f.with_name(f.name + ".reason.txt").read_text()
            reason = re.search(r"^reason: (.+)$", note, re.MULTILINE)
            assert reason and reason.group(1).strip(), f"{f.name}: {note!r}"
        assert tree.in_inbox() == []
        # Still working: a good file dropped afterwards is placed.
        good = write_tone(tmp_path / "good.wav", 4.0, 22050)
        shutil.copy(good, tree.inbox / "good.wav")
        # Placed = linked into the library AND gone from the inbox (a move links, then unlinks).
        wait_for(lambda: "good.wav" in {p.name for p in tree.placed()} and not tree.in_inbox(), 30,
                 "the good file placed")
        # Nothing lost or duplicated: every dropped file is in exactly one place.
        names = [p.name for p in tree.placed() + tree.quarantined() + tree.in_inbox()]
        assert sorted(names) == sorted(expected_bad | expected_ok | {"good.wav"})
        assert tree.stop() == 0
    finally:
        tree.reap()
