"""The ``notify:`` keys (issue 23's nudge): real YAML files through ``load_settings`` and the real
``genre-daemon check-config``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genre_daemon.config import NotifySettings, describe, load_settings, parse_settings
from genre_daemon.errors import ConfigError


def folders(root: Path) -> str:
    return "".join(f"{k}: {root / k}\n" for k in ("inbox", "library", "review_dir", "quarantine_dir", "state_dir"))


def config(tmp_path: Path, notify: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(folders(tmp_path) + notify, encoding="utf-8")
    return path


def test_off_by_default_and_empty_section_means_defaults(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).notify == NotifySettings(url=None, every=3600.0)
    assert load_settings(config(tmp_path, "notify:\n")).notify == NotifySettings()


@pytest.mark.parametrize("url", [
    "https://ntfy.sh/my-topic",
    "https://ntfy.sh/my-topic?tpl=1&m={{.message}}",
    "https://gotify.example:8443/message?token=AbC",
    "http://homeassistant.local:8123/api/webhook/genre",
    "http://bob:secret@[::1]:8080/hook",
])
def test_an_http_url_and_a_positive_every_are_taken(tmp_path: Path, url: str) -> None:
    s = load_settings(config(tmp_path, f"notify:\n  url: '{url}'\n  every: 0.5\n"))
    assert s.notify == NotifySettings(url=url, every=0.5)


@pytest.mark.parametrize("notify, says", [
    ("  url: ftp://example.org/x\n", "notify.url: 'ftp://example.org/x' is not http:// or https://"),
    ("  url: ntfy.sh/topic\n", "notify.url: 'ntfy.sh/topic' is not http:// or https://"),
    ("  url: 'http:///path'\n", "notify.url: 'http:///path' names no host"),
    ("  url: 'http://h:70000/'\n", "notify.url: 'http://h:70000/' has a port that is not a number from 1 to 65535"),
    ("  url: 'http://h/a b'\n", "notify.url: 'http://h/a b' holds a space"),
    ("  url: 42\n", "notify.url: expected an http:// or https:// URL with a host"),
    ("  every: 0\n", "notify.every: expected a number of seconds > 0, such as 3600, got 0"),
    ("  every: -5\n", "notify.every: expected a number of seconds > 0"),
    ("  every: '60'\n", "notify.every: expected a number of seconds > 0, such as 3600, got '60' (text, not a number"),
    ("  evry: 60\n", "notify.evry: unknown key; did you mean notify.every?"),
])
def test_a_bad_value_is_one_message_naming_the_key(tmp_path: Path, notify: str, says: str) -> None:
    path = config(tmp_path, "notify:\n" + notify)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: ") and says in lines[0], lines


def test_notify_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"notify: expected a mapping of url, every"):
        load_settings(config(tmp_path, "notify: https://ntfy.sh/x\n"))


def test_check_config_shows_the_notify_keys_and_they_read_back(tmp_path: Path) -> None:
    path = config(tmp_path, "notify:\n  url: https://ntfy.sh/my-topic\n  every: 120\n")
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "check-config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "notify: {url: 'https://ntfy.sh/my-topic', every: 120.0}" in out.stdout
    s = load_settings(path)
    assert parse_settings(yaml.safe_load(describe(s))).notify == s.notify
