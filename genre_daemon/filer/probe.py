"""Classifying a suspect file in a separate process, so a poison file kills that process, not the
daemon, and a file the daemon merely happened to be classifying when it was killed is not taken
for poison.

A stop of the daemon while it classifies a file is blamed on that file. After
``MAX_INTERRUPTIONS`` such stops an album's track is not quarantined on that count alone (it
would tear its album apart): it is classified once more here, in a child process with a memory
cap. The child finishing settles it (the track is healthy, the stops came from outside: a
``kill -9``, a power cut); the child dying, failing or running out of time is what a poison file
does, and the track then goes to quarantine with that reason.

Run as ``python -m genre_daemon.filer.probe MODEL_DIR FILE``: it prints ``ready`` once the
model is loaded, then one JSON line (``prediction`` or ``error``).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from genre_daemon.model.inference import Prediction

TIMEOUT = 300.0  # seconds a separate classification may take: a file is bounded to ~10 patches
# Address space the child may take beyond what it holds once the model is loaded (a decoder bomb
# stops there, as poison, instead of swapping the machine); an environment variable for tests.
MEMORY_MB = int(os.environ.get("GENRE_DAEMON_PROBE_MEMORY_MB", "2048"))


@dataclass(frozen=True)
class Apart:
    """What classifying a file in a separate process gave: a prediction, the decoder's reason
    (``error``), why the file is judged poison (``poison``), or ``stopped`` (the daemon is
    stopping: nothing was learnt)."""

    prediction: Prediction | None = None
    error: str | None = None
    incomplete: bool = False
    poison: str | None = None
    stopped: bool = False


def classify_apart(model_dir: Path, path: Path, *, stop: threading.Event | None = None,
                   timeout: float = TIMEOUT) -> Apart:
    """Classify ``path`` with the model in ``model_dir`` in a child process (see the module
    docstring); a daemon stopping meanwhile kills the child and gets ``stopped``."""
    proc = subprocess.Popen([sys.executable, "-m", "genre_daemon.filer.probe", str(model_dir), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            proc.kill()
            proc.wait()
            return Apart(stopped=True)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return Apart(poison=f"classifying it in a separate process took over {timeout:.0f} s")
        time.sleep(0.05)
    out, err = proc.communicate()
    lines = out.splitlines()
    ready = bool(lines) and lines[0] == "ready"
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        if not ready:
            return Apart(poison=f"a separate process died loading the model ({name})")
        return Apart(poison=f"classifying it in a separate process too killed that process ({name})")
    result = json.loads(lines[-1]) if ready and len(lines) > 1 else None
    if proc.returncode != 0 or result is None:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return Apart(poison=f"classifying it failed in a separate process too ({tail})")
    if "error" in result:
        return Apart(error=result["error"], incomplete=bool(result.get("incomplete")))
    p = result["prediction"]
    return Apart(prediction=Prediction(str(path), p["genre"], float(p["confidence"]), dict(p["scores"]),
                                       p["model_version"], int(p.get("windows", 0)), float(p.get("duration", 0.0))))


def main(argv: list[str]) -> int:
    """The child: load the model, say ready, cap memory, classify one file, print the result."""
    from genre_daemon.errors import AudioDecodeError
    from genre_daemon.model.inference import Classifier

    model_dir, path = argv
    classifier = Classifier.from_dir(Path(model_dir))
    print("ready", flush=True)
    cap = _address_space() + (MEMORY_MB << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        p = classifier.classify(path)
    except AudioDecodeError as exc:
        print(json.dumps({"error": exc.reason, "incomplete": exc.incomplete}), flush=True)
        return 0
    print(json.dumps({"prediction": {"genre": p.genre, "confidence": p.confidence, "scores": p.scores,
                                     "model_version": p.model_version, "windows": p.windows,
                                     "duration": p.duration}}), flush=True)
    return 0


def _address_space() -> int:
    """This process's virtual size in bytes (VmSize), 0 where /proc cannot say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
