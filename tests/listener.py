"""A real HTTP listener on 127.0.0.1 for the nudge's tests (``notify.url``): http.server in a
thread, recording every request it is sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Listener", "Post"]


@dataclass
class Post:
    """One request as the listener saw it."""

    path: str
    headers: dict[str, str]
    raw: bytes
    status: int

    @property
    def json(self) -> dict[str, object]:
        return json.loads(self.raw)


class Listener:
    """A real HTTP listener that records every request and answers with ``statuses`` in turn
    (the last one from then on)."""

    def __init__(self, port: int = 0, statuses: tuple[int, ...] = (200,)) -> None:
        self.posts: list[Post] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                outer.posts.append(Post(self.path, dict(self.headers), raw, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[Post]:
        return [p for p in self.posts if p.status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
