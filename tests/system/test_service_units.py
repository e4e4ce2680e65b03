"""Pure parts of the service, with real threads: a suspect file (one a stop interrupted before)
is classified alone, so a poison file's interruptions never land on a file beside it."""

from __future__ import annotations

import threading

from support import wait_for

from genre_daemon.filer.solo import SoloLock as _SoloLock


def test_a_suspect_waits_for_the_others_runs_alone_and_goes_before_later_ones() -> None:
    lock = _SoloLock()
    inside: list[str] = []
    log: list[tuple[str, tuple[str, ...]]] = []
    release = {name: threading.Event() for name in ("a", "suspect", "b")}
    state = threading.Lock()

    def run(name: str, solo: bool) -> None:
        with lock.solo() if solo else lock.shared():
            with state:
                inside.append(name)
                log.append((name, tuple(inside)))
            release[name].wait(10)
            with state:
                inside.remove(name)

    a = threading.Thread(target=run, args=("a", False))
    a.start()
    wait_for(lambda: inside == ["a"], 10, "a to start")
    suspect = threading.Thread(target=run, args=("suspect", True))
    suspect.start()
    wait_for(lambda: lock._solo_waiting == 1, 10, "the suspect to wait")
    b = threading.Thread(target=run, args=("b", False))  # comes later: must wait for the suspect
    b.start()
    release["a"].set()
    wait_for(lambda: inside == ["suspect"], 10, "the suspect to run")
    assert "b" not in inside
    release["suspect"].set()
    wait_for(lambda: inside == ["b"], 10, "b to run after the suspect")
    release["b"].set()
    for t in (a, suspect, b):
        t.join(10)
    assert [name for name, _ in log] == ["a", "suspect", "b"]
    assert dict(log)["suspect"] == ("suspect",)  # alone


def test_ordinary_files_run_side_by_side() -> None:
    lock = _SoloLock()
    both = threading.Barrier(2, timeout=10)

    def run() -> None:
        with lock.shared():
            both.wait()  # would time out (BrokenBarrierError) if shared() excluded the other

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not both.broken
