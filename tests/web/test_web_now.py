"""The page says what is true now: the threshold as the running daemon has it after SIGHUP
re-read its config (the page the daemon serves itself, and ``genre-daemon web`` beside it), and,
with no daemon running, as the config file says now."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette uvicorn)")

from test_web import Client, WebTree  # noqa: E402
from test_web_albums import Daemon  # noqa: E402

from genre_daemon.config import load_settings  # noqa: E402
from genre_daemon.web import start_in_thread  # noqa: E402
from genre_daemon.web.tokens import read_token  # noqa: E402


def hint(client: Client) -> str:
    """The review page's "top score below X" number."""
    page = client.get("/").body.decode()
    found = re.search(r"top score below (?:<span[^>]*>)?([0-9.]+)", page)
    assert found, page[:2000]
    return found.group(1)


def edit(path: Path, text: str) -> None:
    """Save ``path`` as an editor does, a second after its last save (an mtime the page sees)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def threshold(client: Client) -> float:
    return float(client.get("/api/status").json()["min_confidence"])


def test_after_sighup_both_pages_show_the_daemons_new_threshold(tmp_path: Path) -> None:
    from genre_daemon.resources import default_model_dir

    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no shipped model")
    tree = WebTree(tmp_path, settle_seconds=0.3, rescan_interval=2, model=str(default_model_dir()))
    tree.journal.close()
    daemon = Daemon(tree, tmp_path / "daemon.log")
    own = daemon.start()  # the page the daemon serves itself (web.enabled)
    beside: subprocess.Popen[str] | None = None
    try:
        beside = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "web", "--config",
                                   str(tree.root / "config.yaml")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = beside.stdout.readline()  # type: ignore[union-attr]
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert port, line + beside.stderr.read()  # type: ignore[union-attr]
        alone = Client(int(port.group(1)), read_token(tree.state) or "")
        daemon.wait(lambda: daemon.status().get("min_confidence") == 0.4, "the daemon's status")
        assert threshold(own) == 0.4 and threshold(alone) == 0.4 and hint(own) == "0.4" and hint(alone) == "0.4"

        tree.config_data["min_confidence"] = 0.25
        edit(tree.root / "config.yaml", json.dumps(tree.config_data))
        # edited but not reloaded: the daemon still files by 0.4, and so the pages say
        assert threshold(own) == 0.4 and threshold(alone) == 0.4 and hint(alone) == "0.4"
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait(lambda: threshold(own) == 0.25, "the daemon's page to show the reloaded threshold")
        daemon.wait(lambda: threshold(alone) == 0.25, "genre-daemon web to show the reloaded threshold")
        assert hint(own) == "0.25" and hint(alone) == "0.25"
        assert own.get("/api/review/summary").json()["min_confidence"] == 0.25
    finally:
        if beside is not None:
            beside.send_signal(signal.SIGTERM)
            beside.wait(15)
        if daemon.proc is not None and daemon.proc.poll() is None:
            assert daemon.stop() == 0, daemon.log.read_text()[-2000:]


def test_with_no_daemon_the_page_reads_the_config_file_as_it_is_now(tmp_path: Path) -> None:
    tree = WebTree(tmp_path)
    config = tree.write_config()
    server = start_in_thread(load_settings(config))
    try:
        client = Client.of(server)
        assert threshold(client) == 0.4 and hint(client) == "0.4"
        edit(config, json.dumps({**tree.config_data, "min_confidence": 0.3}))
        assert threshold(client) == 0.3 and hint(client) == "0.3"
        edit(config, "min_confidence: [not a number\n")  # a broken file: what the page started with
        assert threshold(client) == 0.4
    finally:
        server.stop()
        tree.close()

