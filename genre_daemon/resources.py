"""Where the shipped files are (the genre model, the front ends' weights and licences, the service
templates): the one place that knows.

In a checkout they sit at the top of the repository (``models/default``, ``service/``); in an
installed wheel the build copied them into the package itself, as ``genre_daemon/shipped/<same
relative path>``, so an install finds them relative to this file whatever the layout (a venv,
``pip install --user``, pipx, a distro's site-packages). :data:`SHIPPED` lists every file that
ships: ``setup.py`` reads it (without importing the package) to copy exactly these into the wheel,
and the tests check it against the checkout's folders, so a file added there and not here fails.

Plain standard library only: ``setup.py`` runs this file at build time.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
"""The repository root when running from a checkout (or an editable install of one)."""
PACKAGED_AS = "shipped"
"""The folder inside the ``genre_daemon`` package that holds the shipped files in a wheel."""
PACKAGED = Path(__file__).resolve().parent / PACKAGED_AS

SHIPPED: dict[str, tuple[str, ...]] = {
    "models/default": ("model.json", "weights.safetensors", "rehearsal.safetensors"),
    "models/musicnn": ("msd.safetensors", "mtt.safetensors", "provenance.json", "LICENSE-musicnn.txt"),
    "models/efficientat": ("mn04_as.safetensors", "class_labels_indices.csv", "provenance.json",
                           "LICENSE-EfficientAT.txt", "NOTICE-AudioSet.txt"),
    "service": ("genre-daemon.service", "genre-daemon-user.service", "com.genre-daemon.plist"),
}
"""Each shipped folder (relative to the checkout's root) and the files in it that ship."""


def candidates(relative: str) -> list[Path]:
    """Where the shipped folder ``relative`` may be, in the order looked: the checkout's, the package's."""
    return [CHECKOUT / relative, PACKAGED / relative]


def shipped(relative: str, marker: str, env: str | None = None) -> Path:
    """``$env`` if set, else the first of :func:`candidates` that holds ``marker``; the checkout's
    when neither does (so an error names a real place)."""
    if env and os.environ.get(env):
        return Path(os.environ[env])
    places = candidates(relative)
    for c in places:
        if (c / marker).is_file():
            return c
    return places[0]


def default_model_dir() -> Path:
    """The shipped genre model: ``$GENRE_DAEMON_MODEL``, or ``models/default``."""
    return shipped("models/default", "model.json", env="GENRE_DAEMON_MODEL")


def musicnn_dir() -> Path:
    """The shipped musicnn weights: ``$GENRE_DAEMON_MUSICNN``, or ``models/musicnn``."""
    return shipped("models/musicnn", "provenance.json", env="GENRE_DAEMON_MUSICNN")
