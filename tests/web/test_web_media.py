"""Songs and albums as people know them on the review page: their own tags (written with mutagen
into real FLAC and WAV files), the album's cover (a real cover.jpg, a picture embedded in the
files), served by the real server, and the cache that keeps a long list fast but never stale."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette uvicorn)")

import mutagen.flac  # noqa: E402, F401  (fixtures)
import mutagen.id3  # noqa: E402
import mutagen.wave  # noqa: E402
from PIL import Image  # noqa: E402

from test_web import Client, WebTree, client, server, tag_file, tree  # noqa: E402, F401  (fixtures)

from genre_daemon.web.server import WebServer  # noqa: E402

SONG_TAGS = {"title": "Blue in Green", "artist": "Bill Evans", "album": "Portrait in Jazz", "date": "1959-12-28",
             "tracknumber": "7/10"}
ALBUM_TAGS = {"artist": "The Band", "albumartist": "The Band", "album": "Live at Home", "date": "2001"}


def picture(kind: str = "JPEG", color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real 8x8 image in ``kind`` (JPEG, PNG) made with Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, kind)
    return out.getvalue()


def embed_flac_picture(path: Path, data: bytes, mime: str, kind: int = 3) -> None:
    """Add a FLAC picture block (``kind`` 3: the front cover) to ``path`` with mutagen."""
    audio = mutagen.flac.FLAC(path)
    pic = mutagen.flac.Picture()
    pic.type, pic.mime, pic.data = kind, mime, data
    audio.add_picture(pic)
    audio.save()


def item_of(client: Client, file_id: int, path: str = "/api/review") -> dict:
    return next(i for i in client.get(path).json() if i["id"] == file_id)


def test_a_loose_song_carries_its_own_tags_and_keeps_its_file_name(tree: WebTree, client: Client) -> None:
    song = tree.unsure("07 track.flac", tags=SONG_TAGS)
    bare = tree.unsure("bare.wav")
    item = item_of(client, song)
    assert item["name"] == "07 track.flac" and item["kind"] == "file"
    assert (item["title"], item["artist"], item["album_title"], item["year"], item["track"]) == \
        ("Blue in Green", "Bill Evans", "Portrait in Jazz", 1959, 7)
    assert {"id", "kind", "name", "genre", "confidence", "scores"} <= set(item)
    untagged = item_of(client, bare)
    assert untagged["name"] == "bare.wav"
    assert [untagged[k] for k in ("title", "artist", "album_title", "year", "track", "cover")] == [None] * 6
    assert "Bill Evans" not in client.get("/api/review").body.decode().split('"bare.wav"')[1].split("}")[0]


def test_an_album_with_a_cover_jpg_shows_it_and_its_tracks_tags(tree: WebTree, client: Client) -> None:
    jpeg = picture("JPEG")
    album, ids = tree.album("Live at Home", ["CD1/01 Opening.flac", "CD1/02 Middle.flac", "CD2/01 Closing.flac"],
                            tags=ALBUM_TAGS, others={"Cover.JPG": jpeg})
    for fid, disc in zip(ids, ("1", "1", "2")):
        tag_file(Path(tree.journal.get(fid).destination), discnumber=disc)  # type: ignore[union-attr, arg-type]
    item = item_of(client, ids[0])
    assert item["kind"] == "album" and item["album"] == album and item["name"] == "Live at Home"
    assert (item["album_title"], item["artist"], item["year"]) == ("Live at Home", "The Band", 2001)
    assert item["cover"] == f"/api/files/{ids[0]}/cover"
    tracks = item["tracks"]
    assert [(t["title"], t["track"], t["disc"], t["artist"]) for t in tracks] == [
        ("01 Opening", 1, 1, "The Band"), ("02 Middle", 2, 1, "The Band"), ("01 Closing", 3, 2, "The Band")]
    assert all(t["duration"] == pytest.approx(1.0, abs=0.01) for t in tracks)
    got = client.get(item["cover"])
    assert got.status == 200 and got.body == jpeg and got.headers["content-type"] == "image/jpeg"
    assert got.headers["cache-control"].startswith("private, max-age=") and got.headers["etag"]
    assert "last-modified" in got.headers
    again = client.get(item["cover"], headers={"If-None-Match": got.headers["etag"]})
    assert again.status == 304 and again.body == b""
    # any track of the album names the same picture (a disc folder looks up to the album's)
    third = client.get(f"/api/files/{ids[2]}/cover")
    assert third.status == 200 and third.body == jpeg


def test_an_album_with_only_an_embedded_picture_serves_that_picture(tree: WebTree, client: Client) -> None:
    png = picture("PNG", (10, 120, 200))
    back = picture("JPEG", (0, 0, 0))
    _, ids = tree.album("Pictured", ["01 a.flac", "02 b.flac"], tags=ALBUM_TAGS)
    second = tree.review / "Pictured" / "02 b.flac"
    embed_flac_picture(second, back, "image/jpeg", kind=4)  # the back cover, listed first
    embed_flac_picture(second, png, "image/png", kind=3)
    item = item_of(client, ids[0])
    assert item["cover"] == f"/api/files/{ids[1]}/cover"  # the first track has none: the one that has
    got = client.get(item["cover"])
    assert got.status == 200 and got.body == png and got.headers["content-type"] == "image/png"
    assert client.get(f"/api/files/{ids[0]}/cover").status == 404


def test_an_id3_front_cover_in_a_loose_song_is_served(tree: WebTree, client: Client) -> None:
    song = tree.unsure("loose.wav")
    path = tree.review / "loose.wav"
    front, other = picture("JPEG", (255, 255, 0)), picture("PNG", (0, 255, 0))
    audio = mutagen.wave.WAVE(path)
    audio.add_tags()
    audio.tags.add(mutagen.id3.TIT2(encoding=3, text="Yellow"))
    audio.tags.add(mutagen.id3.APIC(encoding=3, mime="image/png", type=8, desc="artist", data=other))
    audio.tags.add(mutagen.id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="front", data=front))
    audio.save()
    item = item_of(client, song)
    assert item["title"] == "Yellow" and item["cover"] == f"/api/files/{song}/cover"
    got = client.get(item["cover"])
    assert got.status == 200 and got.body == front and got.headers["content-type"] == "image/jpeg"


def test_no_cover_is_404_and_null_and_the_review_folders_own_picture_is_nobodys(
        tree: WebTree, client: Client) -> None:
    (tree.review / "cover.jpg").write_bytes(picture())  # in the review folder itself: no album's
    song = tree.unsure("plain.flac", tags=SONG_TAGS)
    _, ids = tree.album("No Art", ["01.flac"], tags=ALBUM_TAGS)
    assert item_of(client, song)["cover"] is None and item_of(client, ids[0])["cover"] is None
    for fid in (song, ids[0]):
        r = client.get(f"/api/files/{fid}/cover")
        assert r.status == 404 and "no cover" in r.json()["error"]
    assert client.get("/api/files/999999/cover").status == 404
    assert client.get(f"/api/files/{song}/cover", auth=False).status == 401


def test_a_cover_symlinked_out_of_the_tree_is_never_served(tree: WebTree, client: Client, tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(picture("JPEG", (1, 2, 3)))
    _, ids = tree.album("Linked", ["01.flac"], tags=ALBUM_TAGS)
    (tree.review / "Linked" / "cover.jpg").symlink_to(secret)
    assert item_of(client, ids[0])["cover"] is None
    assert client.get(f"/api/files/{ids[0]}/cover").status == 404
    inside = picture("PNG", (9, 9, 9))
    (tree.review / "Linked" / "front.png").write_bytes(inside)  # a real one beside it is served
    item = item_of(client, ids[0])
    assert item["cover"] == f"/api/files/{ids[0]}/cover"
    assert client.get(item["cover"]).body == inside


def test_recent_rows_carry_tags_and_an_albums_rows_share_its_cover(tree: WebTree, client: Client) -> None:
    jpeg = picture()
    song = tree.sure("placed.flac", tags=SONG_TAGS)
    _, ids = tree.album("Sure Thing", ["01 x.flac", "02 y.flac"], genre="rock",
                        tags={"album": "Sure Thing", "artist": "Solo", "date": "1999"}, others={"folder.jpg": jpeg})
    rows = {r["id"]: r for r in client.get("/api/recent").json()}
    assert (rows[song]["title"], rows[song]["artist"], rows[song]["album_title"]) == \
        ("Blue in Green", "Bill Evans", "Portrait in Jazz")
    assert rows[song]["cover"] is None
    for fid in ids:
        assert rows[fid]["album_title"] == "Sure Thing" and rows[fid]["album_artist"] == "Solo"
        assert rows[fid]["cover"] == f"/api/files/{ids[0]}/cover" and rows[fid]["year"] == 1999
    assert client.get(rows[ids[1]]["cover"]).body == jpeg


def test_tags_are_read_once_and_again_when_the_file_changes(tree: WebTree, server: WebServer,
                                                             client: Client) -> None:
    song = tree.unsure("retag.flac", tags=SONG_TAGS)
    media = server.data._media
    assert item_of(client, song)["title"] == "Blue in Green"
    reads = media.reads
    assert item_of(client, song)["title"] == "Blue in Green" and media.reads == reads  # from the cache
    path = tree.review / "retag.flac"
    st = os.stat(path)
    tag_file(path, title="Peace Piece")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a tag editor's save, a second later
    assert item_of(client, song)["title"] == "Peace Piece" and media.reads == reads + 1


def test_why_a_song_waits_is_shown_when_the_daemon_said_more_than_a_low_score(tree: WebTree,
                                                                                client: Client) -> None:
    why = "its own tag says jazz, the sound says pop 0.31: yours to decide"
    told = tree.unsure("told.wav", reason=why)
    plain = tree.unsure("plain.wav")
    items = {it["id"]: it for it in client.get("/api/review").json()}
    assert items[told]["why"] == why and items[plain]["why"] is None
    page = client.get("/").body.decode()
    start = page.index(f'id="song-{told}"')
    card = page[start:page.index("</li>", start)]  # a loose song's card holds no other list item
    assert f'<p class="why">{why}</p>' in card
    assert page.count('class="why"') == 1
