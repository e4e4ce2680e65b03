"""Where the shipped files are found: the checkout's folders, else the copy inside the package.

``SHIPPED`` must name exactly what the checkout's folders hold (setup.py copies those names into
the wheel, so a file added to ``models/`` and not to the list would be missing from every install).
The package-relative lookup is checked on a real copy of ``resources.py`` laid out as a wheel
installs it (no checkout around it), run in its own interpreter; tests/system/test_wheel.py checks
the same through a real wheel in a real venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT
from genre_daemon import resources
from genre_daemon.resources import PACKAGED_AS, SHIPPED


@pytest.mark.parametrize("relative", sorted(SHIPPED))
def test_shipped_names_exactly_what_the_checkout_folder_holds(relative: str) -> None:
    folder = PROJECT_ROOT / relative
    assert sorted(SHIPPED[relative]) == sorted(p.name for p in folder.iterdir() if p.name != "__pycache__")


def test_in_the_checkout_the_checkouts_folders_are_used() -> None:
    assert resources.CHECKOUT == PROJECT_ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENRE_DAEMON_")}
    probe = ("import json; from genre_daemon.resources import default_model_dir, musicnn_dir; "
             "print(json.dumps([str(default_model_dir()), str(musicnn_dir())]))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(r.stdout) == [str(PROJECT_ROOT / "models/default"), str(PROJECT_ROOT / "models/musicnn")]


def installed_layout(root: Path, with_marker: bool = True) -> Path:
    """``site-packages/genre_daemon`` as the wheel installs it: resources.py and shipped/models/default."""
    package = root / "site-packages" / "genre_daemon"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy2(Path(resources.__file__), package / "resources.py")
    default = package / PACKAGED_AS / "models" / "default"
    default.mkdir(parents=True)
    if with_marker:
        shutil.copy2(PROJECT_ROOT / "models/default/model.json", default / "model.json")
    return package


def lookup(package: Path, env: dict[str, str] | None = None) -> list[str]:
    """default_model_dir() and candidates('service') of the copy at ``package``, in a fresh interpreter."""
    probe = ("import json; from genre_daemon.resources import default_model_dir, candidates; "
             "print(json.dumps([str(default_model_dir()), *map(str, candidates('service'))]))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GENRE_DAEMON_")}
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=package.parent,
                       env={**clean, **(env or {}), "PYTHONPATH": str(package.parent)}, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_an_install_finds_its_files_inside_the_package(tmp_path: Path) -> None:
    package = installed_layout(tmp_path)
    model, checkout_service, packaged_service = lookup(package)
    assert model == str(package / PACKAGED_AS / "models" / "default")
    assert packaged_service == str(package / PACKAGED_AS / "service")
    assert checkout_service == str(package.parent / "service")  # looked at first, as in a checkout


def test_an_install_missing_its_files_names_the_checkout_place_and_the_env_var_wins(tmp_path: Path) -> None:
    package = installed_layout(tmp_path, with_marker=False)
    assert lookup(package)[0] == str(package.parent / "models" / "default")
    assert lookup(package, env={"GENRE_DAEMON_MODEL": str(tmp_path / "mine")})[0] == str(tmp_path / "mine")
