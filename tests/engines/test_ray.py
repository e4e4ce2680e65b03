"""The Ray engine on a real multi-process cluster: a head and a second node started here with
``ray start`` (each its own raylet, 1 CPU each, on loopback addresses), the driver in this
process. Identical predictions to the local engine, through the command line; and a SIGKILL of
the second node's raylet in the middle of a run loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'genre-daemon[ray]')")

from genre_daemon.cli import main  # noqa: E402
from genre_daemon.engines import open_engine  # noqa: E402
from genre_daemon.engines.on_ray import RAY_ENVIRONMENT  # noqa: E402
from genre_daemon.model.efficientat.tagger import WINDOW_SECONDS  # noqa: E402
from genre_daemon.model.inference import WHOLE_SECONDS  # noqa: E402
from genre_daemon.resources import default_model_dir  # noqa: E402

from .conftest import alive, assert_same, bad_files, clips, reference  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"  # 127.0.0.1 is replaced by the eth0 address: keep them apart


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """``host:port`` of a two-node cluster; ``ray stop --force`` afterwards, whatever happened."""
    if not Path(RAY).exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    temp = tempfile.mkdtemp(prefix="gd-ray-")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, **RAY_ENVIRONMENT, "PATH": f"{Path(RAY).parent}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    address = f"{HEAD_IP}:{free_port(HEAD_IP)}"
    common = ["--num-cpus=1", "--object-store-memory=300000000", "--disable-usage-stats", f"--temp-dir={temp}"]
    try:
        subprocess.run([RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={address.split(':')[1]}",
                        "--include-dashboard=false", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address={address}", f"--node-ip-address={NODE_IP}", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def raylet_pid(node_id: str) -> int:
    """The pid of the raylet of ``node_id`` (its command line carries ``--node_id=<id>``)."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    for line in ps.splitlines():
        if "raylet" in line and f"--node_id={node_id}" in line:
            return int(line.split()[0])
    raise LookupError(node_id)


@pytest.fixture(scope="module")
def paths(gtzan_dir: Path) -> list[str]:
    return clips(gtzan_dir, 20)


def test_ray_engine_on_the_cli_gives_the_local_results(cluster: str, paths: list[str], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    files = [*paths, *bad_files(tmp_path, paths[0])]
    assert main(["classify", "--json", *files]) == 1
    local = {d["path"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main(["classify", "--json", "--engine", "ray", "--ray-address", cluster, *files]) == 1
    lines = capsys.readouterr().out.splitlines()
    on_ray = {d["path"]: d for d in map(json.loads, lines)}
    assert len(lines) == len(files) and on_ray == local
    assert sum("error" in d for d in on_ray.values()) == 3


def test_killing_the_second_nodes_raylet_mid_run_loses_nothing(cluster: str, paths: list[str], classifier) -> None:
    expected = reference(classifier, paths)
    with open_engine("ray", default_model_dir(), ray_address=cluster, workers=2, batch_size=1) as engine:
        import ray

        [second] = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == NODE_IP]
        victim = raylet_pid(second)
        results = []
        for r in engine.classify(paths):
            results.append(r)
            if len(results) == 4:  # both actors are at work by now: each has sent back results
                os.kill(victim, signal.SIGKILL)
        assert not alive(victim)
    assert_same(results, expected)


def test_round3_predictions_are_the_same_from_classify_json_local_and_ray_long_and_short(
        cluster: str, paths: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], classifier) -> None:
    """The round-3 model (musicnn's patches and AudioSet's 10 s windows, fused) gives the same
    predictions through ``classify --json``, the local engine's workers and Ray's actors: on a
    long stereo MP3 (both front ends' spans read by seeking, through one handle), a clip shorter
    than one window, and whole clips; and, across the engines' processes, to the last bit."""
    assert classifier.model.prior is not None and classifier.model.prior.windows > 1
    import soundfile as sf

    joined = tmp_path / "joined.flac"
    sf.write(joined, np.concatenate([sf.read(p, dtype="float32")[0] for p in paths[5:8]]), 22050)
    long = tmp_path / "long.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(joined), "-ar", "44100", "-ac", "2",
                    "-b:a", "192k", str(long)], check=True, timeout=120)
    y, sr = sf.read(paths[9], dtype="float32")
    short = tmp_path / "short.flac"
    sf.write(short, y[: 7 * sr], sr)
    files = [str(long), str(short), *paths[:3]]
    assert main(["classify", "--json", *files]) == 0
    one = {d["path"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(one) == len(files)
    for engine in (["--engine", "local", "--workers", "2"], ["--engine", "ray", "--ray-address", cluster]):
        assert main(["classify", "--json", *engine, *files]) == 0
        assert {d["path"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())} == one, engine
    expected = reference(classifier, files)
    assert expected[str(long)].prediction.duration > WHOLE_SECONDS  # the windowed path
    assert expected[str(short)].prediction.duration < WINDOW_SECONDS
    for name, options in (("local", {}), ("ray", {"ray_address": cluster})):
        with open_engine(name, default_model_dir(), workers=2, **options) as engine:
            assert_same(list(engine.classify(files)), expected)
