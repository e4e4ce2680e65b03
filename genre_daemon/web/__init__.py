"""The review page: listen to the songs in review, file them with a click, correct and undo
recent placements, watch the status and retraining, roll back a model (``docs/web.md``).

The daemon serves it itself when ``web.enabled`` (one call: :func:`start_in_thread`);
``genre-daemon web`` serves it alone against a running daemon's state files (:func:`serve`).
Importing this package is cheap: Starlette and uvicorn are loaded only when a server is made,
so ``genre-daemon status`` can read the token without them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "WebData", "WebError", "WebServer", "WebStartError", "ensure_token", "read_endpoint", "read_token",
    "serve", "start_in_thread", "token_path",
]

_WHERE = {
    "WebData": "data", "WebError": "data", "WebServer": "server", "WebStartError": "server", "serve": "server",
    "start_in_thread": "server", "ensure_token": "tokens", "read_endpoint": "tokens", "read_token": "tokens",
    "token_path": "tokens",
}


def __getattr__(name: str) -> Any:
    """Load the submodule that defines ``name`` on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
