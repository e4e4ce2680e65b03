"""Sorting and filtering the review list, on the real server over a real journal: by time, by how
sure the model was, by suggested genre (the model's name or the user's ``genre_names`` one), the
page and the API alike, and a clear 400 for a sort that does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette uvicorn)")

from test_web import GENRES, Client, WebTree  # noqa: E402

from genre_daemon.web import start_in_thread  # noqa: E402


def scores(top: str, p: float) -> dict[str, float]:
    """Scores with ``top`` at ``p`` (below min_confidence 0.4: review) and the rest spread thin."""
    rest = [g for g in GENRES if g != top]
    return {top: p, **{g: round((1 - p) / len(rest) / 2, 4) for g in rest}}


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[WebTree]:
    t = WebTree(tmp_path, genre_names={"hiphop": "Hip-Hop"})
    yield t
    t.close()


@pytest.fixture
def client(tree: WebTree) -> Iterator[Client]:
    srv = start_in_thread(tree.settings)
    yield Client.of(srv)
    srv.stop()


@pytest.fixture
def ids(tree: WebTree) -> dict[str, int]:
    """Five songs in review, oldest first: (genre, confidence) as named."""
    return {
        "jazz.30": tree.arrive("a.wav", scores("jazz", 0.30), seconds=0.2),
        "hiphop.35": tree.arrive("b.wav", scores("hiphop", 0.35), seconds=0.2),
        "jazz.20": tree.arrive("c.wav", scores("jazz", 0.20), seconds=0.2),
        "blues.38": tree.arrive("d.wav", scores("blues", 0.38), seconds=0.2),
        "hiphop.25": tree.arrive("e.wav", scores("hiphop", 0.25), seconds=0.2),
    }


def order(client: Client, query: str) -> list[int]:
    r = client.get(f"/api/review{query}")
    assert r.status == 200, r.body
    return [i["id"] for i in r.json()]


@pytest.mark.parametrize(("sort", "expected"), [
    ("", ["hiphop.25", "blues.38", "jazz.20", "hiphop.35", "jazz.30"]),
    ("?sort=newest", ["hiphop.25", "blues.38", "jazz.20", "hiphop.35", "jazz.30"]),
    ("?sort=oldest", ["jazz.30", "hiphop.35", "jazz.20", "blues.38", "hiphop.25"]),
    ("?sort=least-sure", ["jazz.20", "hiphop.25", "jazz.30", "hiphop.35", "blues.38"]),
    ("?sort=most-sure", ["blues.38", "hiphop.35", "jazz.30", "hiphop.25", "jazz.20"]),
    # by the genre as the page names it (Hip-Hop sorts as "hip-hop"), then the surest first
    ("?sort=genre", ["blues.38", "hiphop.35", "hiphop.25", "jazz.30", "jazz.20"]),
])
def test_each_sort_orders_the_review_list(client: Client, ids: dict[str, int], sort: str,
                                          expected: list[str]) -> None:
    assert order(client, sort) == [ids[k] for k in expected]


def test_a_genre_filter_takes_the_models_name_or_the_users_and_pages_after_filtering(
        client: Client, ids: dict[str, int]) -> None:
    both = [ids["hiphop.25"], ids["hiphop.35"]]
    assert order(client, "?genre=hiphop") == both
    assert order(client, "?genre=Hip-Hop") == both
    assert order(client, "?genre=Hip-Hop&sort=most-sure") == both[::-1]
    r = client.get("/api/review?genre=jazz&sort=oldest&offset=1&limit=1")
    assert [i["id"] for i in r.json()] == [ids["jazz.20"]] and r.headers["x-total-count"] == "2"
    assert order(client, "?genre=metal") == []
    summary = client.get("/api/review/summary?genre=jazz").json()
    assert summary["total"] == 2 and summary["songs"] == 2 and summary["genre"] == "jazz"
    assert summary["sort"] == "newest" and summary["min_confidence"] == 0.4
    assert [(g["genre"], g["genre_name"], g["items"]) for g in summary["genres"]] == [
        ("hiphop", "Hip-Hop", 2), ("jazz", "jazz", 2), ("blues", "blues", 1)]


def test_the_page_sorts_filters_and_keeps_them_across_its_pages(client: Client, ids: dict[str, int]) -> None:
    page = client.get("/?sort=least-sure").body.decode()
    shown = [int(x) for x in re.findall(r'<li class="song[^"]*" id="song-(\d+)"', page)]
    assert shown == [ids[k] for k in ("jazz.20", "hiphop.25", "jazz.30", "hiphop.35", "blues.38")]
    page = client.get("/?genre=Hip-Hop&sort=oldest").body.decode()
    shown = [int(x) for x in re.findall(r'<li class="song[^"]*" id="song-(\d+)"', page)]
    assert shown == [ids["hiphop.35"], ids["hiphop.25"]]
    assert 'id="review-count">2<' in page


def test_an_unknown_sort_is_a_clear_400_on_the_api_and_the_page(client: Client, ids: dict[str, int]) -> None:
    r = client.get("/api/review?sort=loudest")
    assert r.status == 400 and "unknown sort 'loudest'" in r.json()["error"] and "least-sure" in r.json()["error"]
    assert client.get("/api/review/summary?sort=loudest").status == 400
    page = client.get("/?sort=loudest")
    assert page.status == 400 and b"unknown sort 'loudest'" in page.body
    assert page.headers["content-type"].startswith("text/plain")


def test_albums_sort_and_filter_as_one_item(tree: WebTree, client: Client, ids: dict[str, int]) -> None:
    _, tracks = tree.album("Pop Album", ["01.flac", "02.flac"])  # the album's top genre: pop at 0.31
    assert order(client, "?genre=pop") == [tracks[0]]
    most = order(client, "?sort=most-sure")
    assert most.index(tracks[0]) == 2  # 0.31: after blues.38 and hiphop.35, before jazz.30
    summary = client.get("/api/review/summary").json()
    assert ("pop", 1) in [(g["genre"], g["items"]) for g in summary["genres"]]
    assert next(g["songs"] for g in summary["genres"] if g["genre"] == "pop") == 2
