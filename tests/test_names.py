"""genre_daemon.names: any genre or file name becomes one harmless path component. Pure."""

from __future__ import annotations

import os

import pytest

from genre_daemon.names import safe_component


def test_safe_component_keeps_ordinary_and_unicode_names() -> None:
    assert safe_component("Hip-Hop") == "Hip-Hop"
    assert safe_component("Motörhead – Ace of Spades.mp3") == "Motörhead – Ace of Spades.mp3"
    assert safe_component("Mo\u0308torhead") == "Mötorhead"  # NFC
    assert safe_component("雨.flac") == "雨.flac"



def test_safe_component_long_names_are_cut_on_a_character_and_keep_the_extension() -> None:
    name = "é" * 150 + ".mp3"  # 304 bytes
    got = safe_component(name)
    raw = got.encode("utf-8")
    assert len(raw) <= 200 and got.endswith(".mp3")
    assert set(got[:-4]) == {"é"}
    exactly_200 = "a" * 196 + ".mp3"
    assert safe_component(exactly_200) == exactly_200



def test_safe_component_replaces_undecodable_bytes() -> None:
    name = os.fsdecode(b"caf\xe9.mp3")  # a Latin-1 name on a UTF-8 system: a lone surrogate
    got = safe_component(name)
    assert got == "caf_.mp3"
    got.encode("utf-8")  # strict: no surrogates left



def test_safe_component_fallback() -> None:
    assert safe_component("..", fallback="unnamed") == "unnamed"
    with pytest.raises(ValueError, match="fallback"):
        safe_component("..", fallback="../x")
