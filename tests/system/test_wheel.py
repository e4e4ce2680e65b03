"""The wheel is the product: built from the checkout, installed into a fresh venv, run from elsewhere.

The slow test of the suite (marked ``slow``; about a minute, most of it pip installing torch and
the dependencies): one module-scoped venv serves every check. The wheel is built the way
``python -m build`` does it (an sdist, then the wheel from the unpacked sdist), with the running
venv's setuptools and no network, so the sdist is proved whole too and no stale ``build/`` folder
of the checkout can leak into it. The venv has no system site packages; torch is installed first,
exactly the build this venv runs (so the CPU wheel on this machine, never a CUDA download), then
the wheel, whose other dependencies come from the index or the pip cache. Every command runs with
its cwd in a temporary folder, no PYTHONPATH, no GENRE_DAEMON_* variables and a fresh HOME, so
nothing of the checkout can be found except through the installed package.

Skipped, saying why, when the index is unreachable and pip cannot install from what is on disk.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import GTZAN_DIR, PROJECT_ROOT, write_tone
from genre_daemon import __version__
from genre_daemon.resources import PACKAGED_AS, SHIPPED

pytestmark = pytest.mark.slow

MAX_WHEEL_BYTES = 25_000_000  # today 12 MB: the three model folders; a stray data set would blow it
LICENCES = ("LICENSE", "models/musicnn/LICENSE-musicnn.txt", "models/efficientat/LICENSE-EfficientAT.txt",
            "models/efficientat/NOTICE-AudioSet.txt")


@dataclass(frozen=True)
class Installed:
    """The built wheel, the fresh venv it is installed in, and a folder outside the checkout."""

    wheel: Path
    bin: Path
    elsewhere: Path
    env: dict[str, str]
    seconds: dict[str, float]

    def run(self, *args: str, exe: str = "genre-daemon") -> subprocess.CompletedProcess[str]:
        """``exe`` of the venv with ``args``, from the folder outside the checkout."""
        return subprocess.run([str(self.bin / exe), *args], cwd=self.elsewhere, env=self.env,
                              capture_output=True, text=True, timeout=300)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)  # type: ignore[call-overload]


def clean_env(home: Path | None = None) -> dict[str, str]:
    """This environment without what could lead back to the checkout (PYTHONPATH, GENRE_DAEMON_*),
    with ``home`` as HOME when given (pip keeps the real one: its cache and config are there)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GENRE_DAEMON_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env if home is None else {**env, "HOME": str(home)}


def _index_reachable(python: Path, env: dict[str, str]) -> bool:
    """Whether pip reaches its configured index (asks it for the versions of a small package)."""
    return _run([str(python), "-m", "pip", "index", "versions", "pyyaml"], env=env).returncode == 0


def _pip_install(python: Path, env: dict[str, str], *args: str) -> None:
    """``pip install args`` into the venv of ``python``; skips when it failed for want of the index."""
    r = _run([str(python), "-m", "pip", "install", "--no-compile", "--disable-pip-version-check", *args], env=env)
    if r.returncode == 0:
        return
    tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-6:])
    if not _index_reachable(python, env):
        pytest.skip(f"pip install {' '.join(args)}: the package index is unreachable and what it needs is not "
                    f"on disk:\n{tail}")
    pytest.fail(f"pip install {' '.join(args)} failed with the index reachable:\n{tail}")


def build_wheel(out: Path) -> Path:
    """An sdist of the checkout, then the wheel from it, with the running venv's setuptools (no network)."""
    hook = "import sys; from setuptools import build_meta as m; print(m.build_sdist(sys.argv[1]))"
    r = _run([sys.executable, "-c", hook, str(out)], cwd=PROJECT_ROOT)
    assert r.returncode == 0, f"building the sdist failed:\n{r.stderr[-3000:]}"
    sdist = out / r.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(out, filter="data")
    source = out / sdist.name.removesuffix(".tar.gz")
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)])
    assert r.returncode == 0, f"building the wheel from the sdist failed:\n{r.stderr[-3000:]}"
    (wheel,) = out.glob("genre_daemon-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A fresh venv (no system site packages) with torch first, then the wheel."""
    import torch

    root = tmp_path_factory.mktemp("installed")
    elsewhere = root / "elsewhere"
    (elsewhere / "home").mkdir(parents=True)
    env, pip_env = clean_env(elsewhere / "home"), clean_env()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    seconds["venv"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Exactly the torch this venv runs (2.13.0+cpu here): found on disk, never the CUDA build from PyPI.
    _pip_install(bin_dir / "python", pip_env, f"torch=={torch.__version__}")
    seconds["torch"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _pip_install(bin_dir / "python", pip_env, str(wheel))
    seconds["wheel"] = time.perf_counter() - t0
    yield Installed(wheel, bin_dir, elsewhere, env, seconds)
    print(f"\ntest_wheel: venv {seconds['venv']:.1f} s, torch {seconds['torch']:.1f} s, wheel and its "
          f"dependencies {seconds['wheel']:.1f} s")


def fresh_config(where: Path) -> Path:
    """A config of a daemon that has never run, all its folders under ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    config = where / "config.yaml"
    config.write_text("".join(f"{k}: '{where / v}'\n" for k, v in
                              {"inbox": "inbox", "library": "library", "state_dir": "state"}.items()),
                      encoding="utf-8")
    return config


def test_the_wheel_holds_the_models_weights_templates_and_licences_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"genre_daemon-{__version__}.dist-info/METADATA").decode("utf-8")
    for relative, files in SHIPPED.items():
        for name in files:
            assert f"genre_daemon/{PACKAGED_AS}/{relative}/{name}" in names
    for licence in LICENCES:
        assert f"genre_daemon-{__version__}.dist-info/licenses/{licence}" in names
    assert {n.split("/")[0] for n in names} == {"genre_daemon", f"genre_daemon-{__version__}.dist-info"}
    assert not [n for n in names if "/tests/" in n or "/benchmarks/" in n or "shared" in n or "__pycache__" in n]
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    assert f"\nVersion: {__version__}\n" in metadata
    assert "\nLicense-Expression: MIT AND ISC AND CC-BY-4.0\n" in metadata


def test_version_is_the_one_in_the_package_everywhere(installed: Installed) -> None:
    r = installed.run("--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"genre-daemon {__version__}")
    r = installed.run("-c", "import importlib.metadata as m; print(m.version('genre-daemon'))", exe="python")
    assert r.stdout.strip() == __version__
    assert importlib.metadata.version("genre-daemon") == __version__  # this checkout's own install


def test_installed_package_finds_its_shipped_files_inside_itself(installed: Installed) -> None:
    probe = ("import json; from genre_daemon.resources import default_model_dir, musicnn_dir; "
             "from genre_daemon.model.efficientat.weights import model_dir; "
             "from genre_daemon.system.units import template_dir; import genre_daemon; "
             "print(json.dumps([genre_daemon.__file__, str(default_model_dir()), str(musicnn_dir()), "
             "str(model_dir()), str(template_dir())]))")
    r = installed.run("-c", probe, exe="python")
    assert r.returncode == 0, r.stderr
    package, *folders = (Path(p) for p in json.loads(r.stdout))
    assert package.parent.parent.name == "site-packages"
    assert folders == [package.parent / PACKAGED_AS / rel for rel in
                       ("models/default", "models/musicnn", "models/efficientat", "service")]


def test_classifies_a_real_file_from_outside_the_checkout(installed: Installed, tmp_path: Path) -> None:
    clips = sorted(GTZAN_DIR.glob("jazz/*.flac"))
    clip = clips[0] if clips else write_tone(tmp_path / "tone.flac", seconds=10.0)
    r = installed.run("classify", "--json", str(clip))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["path"] == str(clip)
    assert result["genre"] in result["scores"] and 0.0 < result["confidence"] <= 1.0
    assert result["model"].startswith("default-")


def test_status_of_a_daemon_that_never_ran(installed: Installed) -> None:
    r = installed.run("status", "--config", str(fresh_config(installed.elsewhere / "never-ran")))
    assert r.returncode == 3, r.stderr  # not running, as `systemctl status` and LSB scripts say it
    assert r.stdout.splitlines()[0] == "not running"


def test_service_install_renders_the_templates_shipped_in_the_wheel(installed: Installed) -> None:
    config = fresh_config(installed.elsewhere / "service")
    r = installed.run("service", "install", "--systemd", "--user", "--config", str(config), "--print")
    assert r.returncode == 0, r.stderr
    assert f'ExecStart="{installed.bin / "genre-daemon"}" run --config "{config}"' in r.stdout


def test_bash_accepts_the_completion_script(installed: Installed) -> None:
    r = installed.run("completion", "bash")
    assert r.returncode == 0, r.stderr
    check = subprocess.run(["bash", "-c", 'source /dev/stdin && complete -p genre-daemon'], input=r.stdout,
                           capture_output=True, text=True, env=installed.env, cwd=installed.elsewhere, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "genre-daemon" in check.stdout
