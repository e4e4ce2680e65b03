"""``status`` shows the daemon's uptime through ``cli._duration``: whole units, none dropped."""

from __future__ import annotations

import pytest

from genre_daemon.cli import _duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.9, "0s"), (1, "1s"), (44, "44s"), (59, "59s"), (60, "1m 0s"), (61, "1m 1s"),
    (600, "10m 0s"), (3599, "59m 59s"), (3600, "1h 0m 0s"), (3661, "1h 1m 1s"), (36000, "10h 0m 0s"),
    (86399, "23h 59m 59s"), (86400, "1d 0h 0m 0s"), (90061, "1d 1h 1m 1s"), (10 * 86400 + 5, "10d 0h 0m 5s"),
])
def test_duration_shows_every_unit_from_the_largest_non_zero_one(seconds: float, text: str) -> None:
    assert _duration(seconds) == text
