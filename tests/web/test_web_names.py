"""The review page speaks the user's names (``genre_names``): its pickers and shown genres, the
folder a song is filed into and the genre tag written, whichever name of the genre was clicked
or typed (the real server, a real journal, real files; the shipped model's genres)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from genre_daemon.learning.labels import scan_labels
from genre_daemon.tags import read_tags

pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette uvicorn)")

from test_web import Client, WebTree, client, server  # noqa: E402,F401  (the page on this tree)

NAMES = {"hiphop": "Hip-Hop", "disco": "Pop", "pop": "Pop"}


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[WebTree]:
    t = WebTree(tmp_path, genre_names=NAMES, write_tags=True)
    yield t
    t.close()


def test_the_page_shows_and_files_by_the_users_names(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.flac", "hiphop", "jazz")
    b = tree.unsure("b.flac", "disco", "jazz")
    c = tree.unsure("c.flac", "jazz", "rock")
    [ci, bi, ai] = client.get("/api/review").json()
    assert (ai["genre"], ai["genre_name"]) == ("hiphop", "Hip-Hop") and (bi["genre"], bi["genre_name"]) == ("disco", "Pop")
    page = client.get("/").body.decode()
    assert '<option value="Hip-Hop">' in page and '<option value="hiphop">' not in page
    assert ">Hip-Hop <small>" in page and "model: Hip-Hop" in page
    # The model's genre (a top-3 button) and the user's name both file into the user's folder.
    r = client.post(f"/api/review/{a}", {"genre": "hiphop"})
    assert r.status == 200, r.body
    assert r.json()["genre"] == "Hip-Hop" and r.json()["destination"] == "Hip-Hop/a.flac"
    assert read_tags(tree.library / "Hip-Hop" / "a.flac").genre == "Hip-Hop"
    r = client.post(f"/api/review/{b}", {"genre": "Pop"})
    assert r.status == 200 and r.json()["destination"] == "Pop/b.flac", r.body
    # A name alike a known genre's is that genre's twin: refused, never a second folder.
    r = client.post(f"/api/review/{c}", {"genre": "Hip Hop"})
    assert r.status == 409 and "use 'Hip-Hop'" in r.json()["error"], r.body
    assert sorted(p.name for p in tree.library.iterdir() if p.name != "_review") == ["Hip-Hop", "Pop"]
    labels = scan_labels(tree.settings, tree.journal, known=["disco", "hiphop", "jazz", "pop"])
    assert [(lab.path.name, lab.genre) for lab in labels] == [("a.flac", "hiphop"), ("b.flac", "pop")]
    # Moving a filed song to the folder it is in already is refused by either name.
    move = tree.move_of(b)
    again = client.post(f"/api/moves/{move}/genre", {"genre": "disco"})
    assert again.status == 409 and "already in 'Pop'" in again.json()["error"], again.body
