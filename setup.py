"""The build's one addition to pyproject.toml: copy the shipped files into the package.

The checkout keeps the genre model, the front ends' weights and the service templates at the top of
the repository (``models/``, ``service/``: the layout tests and tools rely on); a wheel carries them
inside the package as ``genre_daemon/shipped/...``, so an installed ``genre-daemon`` finds them
relative to itself (:mod:`genre_daemon.resources`) in any install layout. The list of files is
``genre_daemon.resources.SHIPPED``, read here by running that file alone (it needs nothing but the
standard library), so the build and the program cannot disagree about what ships.
"""

from __future__ import annotations

import os
import runpy

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
_resources = runpy.run_path(os.path.join(HERE, "genre_daemon", "resources.py"))
SHIPPED: dict[str, tuple[str, ...]] = _resources["SHIPPED"]
PACKAGED_AS: str = _resources["PACKAGED_AS"]


class BuildWithShipped(build_py):
    """build_py that adds each :data:`SHIPPED` folder as package data of ``genre_daemon.shipped.*``.

    Both of build_py's data-file lists (the one that builds the wheel, the one sdist reads) get the
    same entries, so the sdist carries ``models/`` and ``service/`` and a wheel built from it is
    whole. An editable install adds nothing: it runs from the checkout, which has the originals.
    """

    def _shipped_data_files(self) -> list[tuple[str, str, str, list[str]]]:
        """``(package, source folder, build folder, file names)`` for every shipped folder."""
        if self.editable_mode:
            return []
        rows = []
        for relative, names in SHIPPED.items():
            package = ".".join(["genre_daemon", PACKAGED_AS, *relative.split("/")])
            missing = [n for n in names if not os.path.isfile(os.path.join(relative, n))]
            if missing:
                raise FileNotFoundError(f"{relative}: shipped files missing from the source tree: {', '.join(missing)}")
            rows.append((package, relative, os.path.join(self.build_lib, *package.split(".")), list(names)))
        return rows

    def _get_data_files(self):  # type: ignore[no-untyped-def]
        return super()._get_data_files() + self._shipped_data_files()

    def get_data_files_without_manifest(self):  # type: ignore[no-untyped-def]
        return super().get_data_files_without_manifest() + self._shipped_data_files()


setup(cmdclass={"build_py": BuildWithShipped})
