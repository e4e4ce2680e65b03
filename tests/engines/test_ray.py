"""The Ray engine on a real multi-process cluster: a head and a second node started here with
``ray start`` (each its own raylet, 1 CPU each, on loopback addresses), the driver in this
process. Identical predictions to the local engine, through the command line; a SIGKILL of
the second node's raylet in the middle of a run loses nothing; and a file that kills its actor
every time is reported after RETRIES deaths, the other files classified."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'genre-daemon[ray]')")

from genre_daemon.cli import main  # noqa: E402
from genre_daemon.engines import Result, open_engine  # noqa: E402
from genre_daemon.engines.local import RETRIES, died_reason  # noqa: E402
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


class ActorKiller(threading.Thread):
    """SIGKILLs the process whose title says it classifies ``target`` (a Ray actor names its file
    in hand there), up to ``times`` times: the actor dies in the middle of that very file."""

    def __init__(self, target: str, times: int) -> None:
        super().__init__(daemon=True)
        self.target, self.times = os.fsencode(target), times
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while len(self.killed) < self.times and not self.stop.is_set():
            for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        title = f.read()
                    if pid not in self.killed and title.startswith(b"ray::GenreActor ") and self.target in title:
                        os.kill(pid, signal.SIGKILL)
                        self.killed.append(pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            time.sleep(0.02)  # a file takes a second or so: never missed


def test_a_file_that_kills_its_actor_every_time_is_reported_after_the_retries(cluster: str, paths: list[str],
                                                                               classifier) -> None:
    some = paths[:6]
    poison = some[2]
    expected = reference(classifier, some)
    expected[poison] = Result(poison, None, died_reason(RETRIES))
    with open_engine("ray", default_model_dir(), ray_address=cluster, workers=2) as engine:
        killer = ActorKiller(poison, times=RETRIES + 1)  # one more than the engine should allow
        killer.start()
        results = list(engine.classify(some))
        killer.stop.set()
        killer.join()
    assert len(killer.killed) == RETRIES and not any(alive(pid) for pid in killer.killed)
    assert sorted(r.path for r in results) == sorted(some)  # each file once: the run went on
    for r in results:
        want = expected[r.path]
        assert r.error == want.error, r.path
        if want.prediction is not None:  # (the last bits of a score may differ from this process's)
            assert r.prediction.genre == want.prediction.genre, r.path
            assert r.prediction.scores == pytest.approx(want.prediction.scores, rel=1e-4), r.path
    assert died_reason(RETRIES) == "the worker classifying it died 3 times"


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
