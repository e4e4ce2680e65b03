"""The review page v2 (issue 23) in a real browser: Debian's chromium driven by Playwright, against
the real server on a real journal and real, tagged audio files.

Albums as one card with cover, artist and album, filed whole with one click; filing from the
keyboard; sort and filter; accepting the suggestion for every selected card; every page at phone
(390 px) and desktop (1280 px) width, light and dark. Screenshots go to the test's tmp folder, or
to ``$GENRE_DAEMON_SCREENSHOTS/<test>/`` when that is set: never into the repository.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_web import GENRES, WebTree, _version
from test_web_browser import Shots, browser_page, server, sync_api, tree  # noqa: F401  (fixtures)

from genre_daemon.web.server import WebServer  # noqa: E402

Page = tuple[Any, Shots]


def sign_in(page: Any, server: WebServer, path: str = "/") -> None:
    """Open ``path`` signed in: the one place these tests sign in (the link `status` prints)."""
    page.goto(server.link())
    if path != "/":
        page.goto(server.url.rstrip("/") + path)


@pytest.fixture
def shown(browser_page: Page, request: pytest.FixtureRequest) -> Iterator[Page]:
    """The browser page, its screenshots under ``$GENRE_DAEMON_SCREENSHOTS`` when that is set."""
    page, shots = browser_page
    folder = os.environ.get("GENRE_DAEMON_SCREENSHOTS")
    if folder:
        shots.folder = Path(folder) / request.node.name
        shots.folder.mkdir(parents=True, exist_ok=True)
        print(f"screenshots: {shots.folder}")
    yield page, shots


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    """A real 120x120 JPEG of one colour, as a folder's cover.jpg."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (120, 120), colour).save(out, "JPEG")
    return out.getvalue()


def _scores(top: str, p: float, second: str = "jazz") -> dict[str, float]:
    """Scores with ``top`` at ``p`` (below the 0.4 threshold: review), ``second`` next."""
    rest = [g for g in GENRES if g not in (top, second)]
    return {top: p, second: round(p - 0.05, 4), **{g: round((1 - 2 * p + 0.05) / len(rest), 4) for g in rest}}


def _ids(page: Any) -> list[int]:
    return [int(x) for x in page.locator("li.song").evaluate_all("els => els.map(e => e.dataset.id)")]


def test_an_album_card_shows_cover_artist_and_album_and_one_click_files_it_whole(
        tree: WebTree, server: WebServer, shown: Page) -> None:
    page, shots = shown
    names = ["01 Opening.flac", "02 Middle.flac", "03 Closing.flac"]
    album, ids = tree.album("live_at_home_1999", names, others={"cover.jpg": _jpeg((200, 80, 40))},
                        tags={"artist": "The Quiet Ones", "album": "Live at Home", "date": "1999"})
    _, bare = tree.album("untitled folder", ["a.flac", "b.flac"])
    song = tree.arrive("track07.flac", _scores("blues", 0.3), tags={"title": "Blue Evening", "artist": "Ann Other"})
    sign_in(page, server)
    sync_api.expect(page.locator("li.song")).to_have_count(3)

    card = page.locator(f"#song-{ids[0]}")
    sync_api.expect(card.locator(".title")).to_have_text("Live at Home")
    sync_api.expect(card.locator(".artist")).to_contain_text("The Quiet Ones")
    sync_api.expect(card.locator(".artist")).to_contain_text("1999")
    sync_api.expect(card.locator(".file")).to_have_text("live_at_home_1999")
    sync_api.expect(card.locator(".length")).to_have_text("0:03")
    cover = card.locator("img.cover")
    assert cover.get_attribute("alt") == "cover of Live at Home"
    page.wait_for_function("i => i.complete && i.naturalWidth === 120", arg=cover.element_handle())
    sync_api.expect(card.locator("li.track .track-name")).to_have_text(["01 Opening", "02 Middle", "03 Closing"])
    sync_api.expect(card.locator("li.track .no")).to_have_text(["1", "2", "3"])
    sync_api.expect(card.locator("li.track .dur")).to_have_text(["0:01"] * 3)
    sync_api.expect(card.locator("li.track audio")).to_have_count(3)
    # an album without a cover gets the neutral placeholder, named for what it stands for
    placeholder = page.locator(f"#song-{bare[0]} .cover.placeholder")
    sync_api.expect(placeholder).to_have_attribute("aria-label", "no cover for untitled folder")
    assert page.locator(f"#song-{bare[0]} img").count() == 0
    # a loose song by its title and artist, its file name small beneath
    loose = page.locator(f"#song-{song}")
    sync_api.expect(loose.locator(".title")).to_have_text("Blue Evening")
    sync_api.expect(loose.locator(".artist")).to_have_text("Ann Other")
    sync_api.expect(loose.locator(".file")).to_have_text("track07.flac")
    shots.take(page, "review-albums")

    # the album's top genre, one click: the whole folder moves
    card.locator("form.pick button.genre").first.click()
    sync_api.expect(card).to_have_count(0)
    sync_api.expect(page.locator("#flash")).to_contain_text("filed into pop")
    there = tree.library / "pop" / "live_at_home_1999"
    assert sorted(p.name for p in there.iterdir()) == sorted([*names, "cover.jpg"])
    assert not (tree.review / "live_at_home_1999").exists()
    sync_api.expect(page.locator("#review-count")).to_have_text("2")
    shots.take(page, "review-album-filed")

    # Recent: the album is one entry (cover, album, artist), its tracks folded; undo takes it all back
    page.click("text=Recent")
    sync_api.expect(page.locator("li.entry[data-album]")).to_have_count(2)  # the other album: its review placement
    entry = page.locator(f'li.entry[data-album="{album}"]')
    sync_api.expect(entry.locator(".title")).to_have_text("Live at Home")
    sync_api.expect(entry.locator(".artist")).to_have_text("The Quiet Ones \N{MIDDLE DOT} 1999")
    sync_api.expect(entry.locator(".what")).to_have_text("album, 3 tracks")
    page.wait_for_function("i => i.complete && i.naturalWidth === 120", arg=entry.locator("img.cover").element_handle())
    tracks = entry.locator("details.tracks li.track")
    sync_api.expect(tracks).to_have_count(3)
    sync_api.expect(tracks.first).to_be_hidden()  # folded
    entry.locator("details.tracks summary").click()
    sync_api.expect(tracks.locator("audio")).to_have_count(3)
    sync_api.expect(tracks.first).to_be_visible()
    shots.take(page, "recent-album")
    entry.locator("form.undo button").click()
    sync_api.expect(page.locator("#flash")).to_contain_text("(3 tracks) is back in the inbox")
    sync_api.expect(entry).to_have_class("entry album undone")
    assert sorted(p.name for p in (tree.inbox / "live_at_home_1999").iterdir()) == sorted([*names, "cover.jpg"])


def test_the_keyboard_moves_plays_selects_and_files_the_current_card(
        tree: WebTree, server: WebServer, shown: Page) -> None:
    page, shots = shown
    oldest = tree.arrive("oldest.wav", _scores("blues", 0.31, "reggae"), seconds=3.0)
    middle = tree.arrive("middle.wav", _scores("country", 0.33, "metal"), seconds=3.0)
    newest = tree.arrive("newest.wav", _scores("disco", 0.35, "hiphop"), seconds=3.0)
    sign_in(page, server)
    assert _ids(page) == [newest, middle, oldest]
    current = page.locator("li.song.current")
    sync_api.expect(current).to_have_attribute("id", f"song-{newest}")

    page.keyboard.press("j")
    sync_api.expect(current).to_have_attribute("id", f"song-{middle}")
    page.keyboard.press("ArrowDown")
    sync_api.expect(current).to_have_attribute("id", f"song-{oldest}")
    page.keyboard.press("k")
    sync_api.expect(current).to_have_attribute("id", f"song-{middle}")

    # space plays the current card's song, and pauses it
    audio = page.locator(f"#song-{middle} audio")
    audio.evaluate("a => { a.muted = true; }")
    page.keyboard.press(" ")
    page.wait_for_function("a => !a.paused && a.currentTime > 0.2", arg=audio.element_handle())
    page.keyboard.press(" ")
    page.wait_for_function("a => a.paused", arg=audio.element_handle())

    # g focuses the card's genre field; what is typed there is text, never a shortcut
    page.keyboard.press("g")
    field = page.locator(f"#song-{middle} form.typed input[name=genre]")
    sync_api.expect(field).to_be_focused()
    page.keyboard.type("jk2x")
    sync_api.expect(field).to_have_value("jk2x")
    sync_api.expect(current).to_have_attribute("id", f"song-{middle}")
    assert (tree.review / "middle.wav").is_file()  # nothing filed
    field.fill("")
    page.locator("h1").click()

    # x selects the card; ? shows the keys
    page.keyboard.press("x")
    sync_api.expect(page.locator(f"#song-{middle} input.select")).to_be_checked()
    sync_api.expect(page.locator("#accept-selected")).to_be_enabled()
    page.keyboard.press("?")
    sync_api.expect(page.locator("#keys")).to_be_visible()
    shots.take(page, "keys")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#keys")).to_be_hidden()

    # 2 files the current card with its second genre: metal; the next card becomes current
    page.keyboard.press("2")
    sync_api.expect(page.locator(f"#song-{middle}")).to_have_count(0)
    assert (tree.library / "metal" / "middle.wav").is_file()
    sync_api.expect(current).to_have_attribute("id", f"song-{oldest}")
    sync_api.expect(page.locator("#flash")).to_contain_text("middle.wav filed into metal")
    sync_api.expect(page.locator("#flash")).to_contain_text("Next: oldest.wav")
    # 1 files the (new) current card with its top genre
    page.keyboard.press("1")
    sync_api.expect(page.locator(f"#song-{oldest}")).to_have_count(0)
    assert (tree.library / "blues" / "oldest.wav").is_file()
    sync_api.expect(current).to_have_attribute("id", f"song-{newest}")
    sync_api.expect(page.locator("#review-count")).to_have_text("1")
    shots.take(page, "keyboard-filed")


def test_sort_and_filter_change_the_order_and_the_cards(tree: WebTree, server: WebServer, shown: Page) -> None:
    page, shots = shown
    a = tree.arrive("a.wav", _scores("rock", 0.36))
    b = tree.arrive("b.wav", _scores("blues", 0.22))
    c = tree.arrive("c.wav", _scores("rock", 0.29))
    d = tree.arrive("d.wav", _scores("pop", 0.33))
    sign_in(page, server)
    assert _ids(page) == [d, c, b, a]  # newest first

    page.select_option("#sort", "least-sure")
    page.wait_for_url("**/?sort=least-sure*")
    assert _ids(page) == [b, c, d, a]
    page.select_option("#sort", "oldest")
    page.wait_for_url("**/?sort=oldest*")
    assert _ids(page) == [a, b, c, d]
    sync_api.expect(page.locator("#sort")).to_have_value("oldest")

    page.select_option("#genre-filter", "rock")
    page.wait_for_url("**genre=rock*")
    assert _ids(page) == [a, c]  # the order is kept with the filter
    sync_api.expect(page.locator("#genre-filter")).to_have_value("rock")
    shots.take(page, "sorted-filtered")
    # filing keeps to the chosen view: the remaining rock song only
    page.locator(f"#song-{a} form.pick button.genre").first.click()
    sync_api.expect(page.locator("li.song")).to_have_count(1)
    page.reload()
    assert _ids(page) == [c]


def test_accept_the_suggestion_for_all_selected_files_each_at_its_own(
        tree: WebTree, server: WebServer, shown: Page) -> None:
    page, shots = shown
    songs = {"one.wav": "reggae", "two.wav": "country"}
    ids = [tree.arrive(name, _scores(genre, 0.3)) for name, genre in songs.items()]
    gone = tree.arrive("gone.wav", _scores("metal", 0.3))
    _, album = tree.album("Some Album", ["01.flac", "02.flac"])
    kept = tree.arrive("kept.wav", _scores("disco", 0.3))
    sign_in(page, server)
    sync_api.expect(page.locator("li.song")).to_have_count(5)
    (tree.review / "gone.wav").unlink()  # deleted by hand meanwhile: refused on its card

    page.locator("#select-all").check()
    page.locator(f"#song-{kept} input.select").uncheck()
    sync_api.expect(page.locator("#accept-selected")).to_have_text("Accept the suggestion for all selected (4)")
    page.locator("#accept-selected").click()
    sync_api.expect(page.locator("#flash")).to_contain_text("filed 3 of 4 at its suggestion; 1 not filed")
    for fid, (name, genre) in zip(ids, songs.items()):
        sync_api.expect(page.locator(f"#song-{fid}")).to_have_count(0)
        assert (tree.library / genre / name).is_file() and not (tree.review / name).exists()
    assert sorted(p.name for p in (tree.library / "pop" / "Some Album").iterdir()) == ["01.flac", "02.flac"]
    sync_api.expect(page.locator(f"#song-{album[0]}")).to_have_count(0)
    sync_api.expect(page.locator(f"#song-{gone} .error")).to_contain_text("no longer in the review folder")
    sync_api.expect(page.locator(f"#song-{kept}")).to_have_count(1)
    assert (tree.review / "kept.wav").is_file()
    sync_api.expect(page.locator("#review-count")).to_have_text("2")
    shots.take(page, "accepted")


def _fill_every_page(tree: WebTree) -> None:
    """Review (an album with a long name, songs), Recent (placements, an album), a model version."""
    tree.album("A Rather Long Album Folder Name Without Any Spaces_To_Break_It_Somewhere_Anywhere",
               ["01 First Track With A Long Title.flac", "02 Second.flac"], others={"cover.jpg": _jpeg((30, 90, 160))},
               tags={"artist": "Somebody With A Long Name", "album": "An Album", "date": "2024"})
    tree.arrive("a loose song.flac", _scores("blues", 0.3), tags={"title": "Loose", "artist": "Someone"})
    tree.unsure("unnamed.wav")
    tree.sure("placed.wav", "rock")
    tree.album("Placed Album", ["01.flac", "02.flac"], genre="jazz", others={"folder.jpg": _jpeg((20, 160, 60))},
               tags={"artist": "Jazz People", "album": "Placed Album", "date": "2001"})
    _version(tree.state / "models", "v0001", list(GENRES[:4]),
             {"validation": {"accuracy": 0.8, "n": 10, "genres": list(GENRES[:4]),
                             "confusion": [[2, 0, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 1, 2]]}})


def _luminance(css: str) -> float:
    """The relative luminance (0 black .. 1 white) of a computed ``rgb(...)`` colour."""
    r, g, b = (int(x) / 255 for x in css[css.index("(") + 1: css.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_a_phone_and_a_desktop_in_light_and_dark(
        tree: WebTree, server: WebServer, shown: Page, scheme: str) -> None:
    page, shots = shown
    _fill_every_page(tree)
    page.emulate_media(color_scheme=scheme)
    sign_in(page, server)
    for width, height in ((390, 844), (1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        for path, name in (("/", "review"), ("/recent", "recent"), ("/status", "status"), ("/models", "models")):
            page.goto(server.url.rstrip("/") + path)
            sync_api.expect(page.locator("main h1")).to_be_visible()
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
            shots.take(page, f"{name}-{width}-{scheme}")
            scroll = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
            assert scroll[0] <= scroll[1], (path, width, scroll)
            background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            lum = _luminance(background)
            assert (lum < 0.15) if scheme == "dark" else (lum > 0.85), (path, scheme, background)
            text = page.evaluate("() => getComputedStyle(document.querySelector('main h1')).color")
            assert abs(_luminance(text) - lum) > 0.6, (path, scheme, text, background)  # readable contrast
    # every control on the review page has a name a screen reader can say
    page.goto(server.url)
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('main input:not([type=hidden]), main select, main button'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map(el => el.outerHTML)""")
    assert unnamed == []


def test_without_the_script_sort_filter_and_filing_still_work_as_plain_forms(
        tree: WebTree, server: WebServer, shown: Page) -> None:
    page, shots = shown
    page.route("**/assets/app.js", lambda route: route.abort())  # the page as a browser without JS sees it
    a = tree.arrive("a.wav", _scores("rock", 0.36))
    b = tree.arrive("b.wav", _scores("blues", 0.22))
    c = tree.arrive("c.wav", _scores("rock", 0.29))
    sign_in(page, server)
    assert page.evaluate("() => document.documentElement.classList.contains('js')") is False
    sync_api.expect(page.locator("#bulk")).to_be_hidden()  # selecting needs the script: not offered
    page.select_option("#sort", "least-sure")
    page.select_option("#genre-filter", "rock")
    page.locator("#view button[type=submit]").click()  # "Show"
    page.wait_for_url("**/?sort=least-sure&genre=rock")
    assert _ids(page) == [c, a]
    shots.take(page, "no-js-sorted")
    page.locator(f"#song-{c} form.pick button[value=jazz]").click()  # posts, the server redirects back
    page.wait_for_url(server.url.rstrip("/") + "/")
    assert (tree.library / "jazz" / "c.wav").is_file()
    assert _ids(page) == [b, a]
