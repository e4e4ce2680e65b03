"""The page's HTML templates (Jinja2, autoescaped) and ``render``.

Kept in Python strings rather than files so the package needs no data files to be installed; the
script is :mod:`genre_daemon.web.page_js` and the style sheet :mod:`genre_daemon.web.page_css`
(re-exported here as ``APP_JS`` and ``APP_CSS``). Every form works without the script: it posts and
the server redirects back; the script turns them into in-place requests and adds the keyboard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import jinja2

from genre_daemon.web.page_css import APP_CSS
from genre_daemon.web.page_js import APP_JS

__all__ = ["render", "APP_JS", "APP_CSS", "SORT_WORDS"]

# The words the page shows for the review list's orders (``?sort=``, :data:`genre_daemon.web.items.SORTS`).
SORT_WORDS = {"newest": "Newest first", "oldest": "Oldest first", "least-sure": "Least sure first",
              "most-sure": "Most sure first", "genre": "By suggested genre"}

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="same-origin">
<meta name="csrf-token" content="{{ csrf }}">
<title>{{ title }} \N{EM DASH} genre-daemon</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body data-page="{{ page }}">
<header class="top">
  <span class="brand">genre-daemon</span>
  <nav aria-label="pages">
    <a href="/" {% if page == 'review' %}aria-current="page"{% endif %}>Review</a>
    <a href="/recent" {% if page == 'recent' %}aria-current="page"{% endif %}>Recent</a>
    <a href="/status" {% if page == 'status' %}aria-current="page"{% endif %}>Status</a>
    <a href="/models" {% if page == 'models' %}aria-current="page"{% endif %}>Models</a>
  </nav>
</header>
<div id="flash" role="status" aria-live="polite"></div>
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

# ``<meta name="referrer">`` above: under the server's ``Referrer-Policy: no-referrer`` Chromium sends
# ``Origin: null`` with a plain form's POST, which the guard refuses as cross-origin; ``same-origin``
# (the page's own policy, which wins over the header) sends this origin to itself and nothing elsewhere.

# Pieces both lists use: a cover (or a neutral placeholder) and a line of who and when.
_PARTS = """{% macro cover(src, what) %}
{% if src %}<img class="cover" src="{{ src }}" alt="cover of {{ what }}" loading="lazy" width="104" height="104">
{% else %}<span class="cover placeholder" role="img" aria-label="no cover for {{ what }}">\N{EIGHTH NOTE}</span>{% endif %}
{% endmacro %}
{% macro byline(artist, album_title=none, year=none) %}
{% set bits = [artist, album_title, year]|select|list %}
{% if bits %}<p class="artist">{{ bits|join(' \N{MIDDLE DOT} ') }}</p>{% endif %}
{% endmacro %}
"""

_REVIEW = """{% extends "base" %}
{% import "parts" as parts %}
{% block main %}
<h1>Review: <span id="review-count">{{ total }}</span> waiting</h1>
<p class="hint">Songs the model was not sure of (top score below <span id="min-confidence">{{ min_confidence }}</span>). Listen, then pick
its genre or type a new one: it moves into that genre folder and the next retrain learns from it.
An album is one card: its genre files the whole album.</p>
<datalist id="genres">{% for g in genres %}<option value="{{ g }}">{% endfor %}</datalist>
<form class="toolbar" method="get" action="/" id="view">
  <label>Sort
    <select name="sort" id="sort">{% for value in sorts %}
      <option value="{{ value }}"{{ ' selected' if value == sort else '' }}>{{ sort_words.get(value, value) }}</option>{% endfor %}
    </select></label>
  <label>Suggested genre
    <select name="genre" id="genre-filter">
      <option value=""{{ '' if filter_genre else ' selected' }}>All genres</option>{% for c in genre_counts %}
      <option value="{{ c.genre_name or c.genre }}"{{ ' selected' if filter_genre and filter_genre|lower in (c.genre|lower, (c.genre_name or '')|lower) else '' }}>{{ c.genre_name or c.genre }} ({{ c.items }})</option>{% endfor %}
    </select></label>
  <button type="submit" class="no-js">Show</button>
</form>
{% if items %}
<div class="bulk needs-js" id="bulk">
  <label class="check"><input type="checkbox" id="select-all"> Select all</label>
  <button type="button" id="accept-selected" class="primary" disabled>Accept the suggestion for all selected</button>
  <button type="button" class="keys-button" id="keys-open" aria-haspopup="dialog">Keys <kbd>?</kbd></button>
</div>
{% else %}
<p id="empty">{{ 'Nothing with that suggested genre is waiting.' if filter_genre else 'Nothing is waiting for review.' }}</p>
{% endif %}
<ol class="songs" id="review-list" aria-label="waiting for review">
{% for it in items %}
{% set album = it.kind == 'album' %}
{% set what = (it.album_title or it.name) if album else (it.title or it.name) %}
{% set best = it.top(1) %}
<li class="song{{ ' album' if album else '' }}" id="song-{{ it.id }}" data-id="{{ it.id }}" data-kind="{{ it.kind }}"
    data-top="{{ best[0][0] if best else (it.genre or '') }}" data-top-name="{{ named(best[0][0]) if best else (it.genre_name or it.genre or '') }}" data-label="{{ what }}"{% if album %} data-album="{{ it.album }}"{% endif %}>
  <div class="card-head">
    <input type="checkbox" class="select needs-js" aria-label="select {{ 'the album ' if album else '' }}{{ what }}">
    {{ parts.cover(it.cover, what) }}
    <div class="meta">
      <h2 class="title">{{ what }}</h2>
      {% if album %}{{ parts.byline(it.artist, none, it.year) }}
      <span class="what">album, {{ it.tracks|length }} track{{ '' if it.tracks|length == 1 else 's' }}</span>{% if it.tracks|map(attribute='duration')|select|list %}<span class="length">{{ it.tracks|map(attribute='duration')|select|sum|duration }}</span>{% endif %}
      {% else %}{{ parts.byline(it.artist, it.album_title, it.year) }}{% endif %}
      {% if what != it.name %}<span class="file">{{ it.name }}</span>{% endif %}
    </div>
    <p class="guess">model: {{ it.genre_name or it.genre or '?' }} <span class="pct">{{ it.confidence|pct }}</span></p>
  </div>
  {% if it.why %}<p class="why">{{ it.why }}</p>{% endif %}
  {% if album %}
  {% set discs = it.tracks|map(attribute='disc')|select|unique|list %}
  <ol class="tracks">
  {% for t in it.tracks %}<li class="track" id="track-{{ t.id }}" data-id="{{ t.id }}">
    <span class="no">{% if discs|length > 1 and t.disc %}{{ t.disc }}.{% endif %}{{ t.track or loop.index }}</span>
    <span class="track-name">{{ t.title or t.name }}{% if t.artist and t.artist != it.artist %} <span class="track-artist">{{ t.artist }}</span>{% endif %}</span>
    <span class="dur">{{ t.duration|duration }}</span>
    <audio controls preload="none" src="/api/files/{{ t.id }}/audio" aria-label="play {{ t.title or t.name }}"></audio></li>
  {% endfor %}</ol>
  {% else %}
  <audio controls preload="none" src="/api/files/{{ it.id }}/audio" aria-label="play {{ what }}"></audio>
  {% endif %}
  <div class="actions">
  <form class="pick" method="post" action="/api/review/{{ it.id }}" data-api="review" aria-label="file {{ 'the album ' if album else '' }}{{ what }} as the model suggests">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    {% for g, p in it.top(3) %}<button type="submit" name="genre" value="{{ g }}" class="genre" data-n="{{ loop.index }}" data-name="{{ named(g) }}" title="file {{ 'the whole album' if album else 'it' }} into {{ named(g) }}"><kbd aria-hidden="true">{{ loop.index }}</kbd>{{ named(g) }} <small>{{ p|pct }}</small></button>
    {% endfor %}
    {% set more = it.top(9)[3:] %}
    {% if more %}<details class="more"><summary>more genres</summary>
    {% for g, p in more %}<button type="submit" name="genre" value="{{ g }}" class="genre" data-n="{{ loop.index + 3 }}" data-name="{{ named(g) }}" title="file {{ 'the whole album' if album else 'it' }} into {{ named(g) }}"><kbd aria-hidden="true">{{ loop.index + 3 }}</kbd>{{ named(g) }} <small>{{ p|pct }}</small></button>
    {% endfor %}</details>{% endif %}
  </form>
  <form class="typed" method="post" action="/api/review/{{ it.id }}" data-api="review">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input name="genre" list="genres" placeholder="another genre" aria-label="genre for {{ 'the album ' if album else '' }}{{ what }}" required maxlength="200" autocomplete="off">
    <button type="submit">{{ 'File the album' if album else 'File' }}</button>
  </form>
  </div>
  <p class="progress" aria-hidden="true"></p>
  <p class="error" role="alert"></p>
</li>
{% endfor %}
</ol>
{% if pages > 1 %}
<nav class="pages" aria-label="pages of the review list">
  {% if page_no > 1 %}<a href="/?{{ {'page': page_no - 1, 'sort': sort, 'genre': filter_genre}|query }}" rel="prev">\N{LEFTWARDS ARROW} previous</a>{% endif %}
  <span>page {{ page_no }} of {{ pages }}</span>
  {% if page_no < pages %}<a href="/?{{ {'page': page_no + 1, 'sort': sort, 'genre': filter_genre}|query }}" rel="next">next \N{RIGHTWARDS ARROW}</a>{% endif %}
</nav>
{% endif %}
<dialog id="keys" aria-labelledby="keys-title">
  <h2 id="keys-title">Keyboard</h2>
  <dl>
    <dt><kbd>j</kbd> <kbd>\N{DOWNWARDS ARROW}</kbd></dt><dd>next card</dd>
    <dt><kbd>k</kbd> <kbd>\N{UPWARDS ARROW}</kbd></dt><dd>previous card</dd>
    <dt><kbd>space</kbd></dt><dd>play or pause the card's (first) track</dd>
    <dt><kbd>1</kbd>\N{EN DASH}<kbd>9</kbd></dt><dd>file the card with its n-th genre</dd>
    <dt><kbd>g</kbd> <kbd>/</kbd></dt><dd>type a genre for the card</dd>
    <dt><kbd>x</kbd></dt><dd>select the card</dd>
    <dt><kbd>?</kbd></dt><dd>this list</dd>
  </dl>
  <form method="dialog"><button class="primary">Close</button></form>
</dialog>
{% endblock %}
"""

_RECENT = """{% extends "base" %}
{% import "parts" as parts %}
{% block main %}
<h1>Recent placements</h1>
<p class="hint">The newest {{ items|length }} files the daemon placed. "Move" files a song into another genre
(a correction the next retrain learns from); "Undo" puts it back where it came from. An album moves and
comes back whole.</p>
<datalist id="genres">{% for g in genres %}<option value="{{ g }}">{% endfor %}</datalist>
<ol class="recent" id="recent" aria-label="recent placements">
{% for entry in items|entries %}
{% set it = entry[0] %}
{% set album = it.album is not none %}
{% set what = (it.album_title or it.album_name or '?') if album else (it.title or it.name) %}
<li class="entry{{ ' album' if album else '' }}{{ ' undone' if it.undone else '' }}" id="move-{{ it.move }}" data-move="{{ it.move }}"{% if album %} data-album="{{ it.album }}"{% endif %}>
  <div class="card-head">
    {{ parts.cover(it.cover, what) }}
    <div class="meta">
      <h2 class="title">{{ what }}</h2>
      {{ parts.byline(it.album_artist or it.artist, none, it.year) if album else parts.byline(it.artist, it.album_title) }}
      {% if album %}<span class="what">album, {{ it.album_tracks }} track{{ '' if it.album_tracks == 1 else 's' }}</span>
      {% elif what != it.name %}<span class="file">{{ it.name }}</span>{% endif %}
    </div>
  </div>
  <dl class="facts">
    <div><dt>when</dt><dd>{{ it.time|when }}</dd></div>
    <div><dt>the daemon said</dt><dd>{% if it.kind == 'review' %}review ({{ it.genre_name or it.genre or '?' }} {{ it.confidence|pct }}){% else %}{{ it.genre_name or it.genre }} {{ it.confidence|pct }}{% endif %}</dd></div>
    <div><dt>now in</dt><dd class="now">{{ it.now }}{% if it.by_you %} <small>(by you)</small>{% endif %}</dd></div>
  </dl>
  {% if album %}
  <details class="tracks"><summary>{{ entry|length }} track{{ '' if entry|length == 1 else 's' }}</summary>
  <ol>{% for t in entry %}<li class="track" id="move-track-{{ t.move }}" data-move="{{ t.move }}">
    <span class="no">{{ t.track or loop.index }}</span>
    <span class="track-name">{{ t.title or t.name }}</span>
    <span class="dur">{{ t.duration|duration }}</span>
    {% if t.playable and not t.undone %}<audio controls preload="none" src="/api/files/{{ t.file }}/audio" aria-label="play {{ t.title or t.name }}"></audio>{% endif %}</li>
  {% endfor %}</ol></details>
  {% elif it.playable and not it.undone %}<audio controls preload="none" src="/api/files/{{ it.file }}/audio" aria-label="play {{ what }}"></audio>{% endif %}
  {% if not it.undone %}
  <div class="actions">
    {% if it.playable %}
    <form class="correct" method="post" action="/api/moves/{{ it.move }}/genre" data-api="correct">
      <input type="hidden" name="csrf" value="{{ csrf }}">
      <input name="genre" list="genres" placeholder="right genre" aria-label="right genre for {{ 'the album ' if album else '' }}{{ what }}" required maxlength="200" autocomplete="off">
      {% if album %}<button type="submit" title="moves the whole album {{ what }} ({{ it.album_tracks }} tracks)">Move album</button>
      {% else %}<button type="submit">Move</button>{% endif %}
    </form>{% endif %}
    <form class="undo" method="post" action="/api/moves/{{ it.move }}/undo" data-api="undo">
      <input type="hidden" name="csrf" value="{{ csrf }}">
      {% if album %}<button type="submit" title="puts the whole album {{ what }} ({{ it.album_tracks }} tracks) back in the inbox">Undo album</button>
      {% else %}<button type="submit">Undo</button>{% endif %}
    </form>
  </div>{% endif %}
  <p class="error" role="alert"></p>
</li>
{% endfor %}
</ol>
{% if not items %}<p id="empty">Nothing placed yet.</p>{% endif %}
{% endblock %}
"""

_STATUS = """{% extends "base" %}
{% block main %}
<h1>Status</h1>
<section id="status" data-poll="/api/status">
<dl class="facts-table">
  <dt>daemon</dt><dd data-key="daemon">{{ daemon }}</dd>
  <dt>model</dt><dd data-key="model_version">{{ s.model_version or '-' }}</dd>
  <dt>review below</dt><dd data-key="min_confidence">{{ s.get('min_confidence', '-') }}</dd>
  <dt>queue</dt><dd data-key="queue_depth">{{ s.queue_depth }}</dd>
  <dt>waiting in review</dt><dd data-key="in_review">{{ s.in_review }}</dd>
  <dt>left alone in the inbox</dt><dd data-key="left_alone">{{ s.left_alone if s.left_alone is not none else '-' }}</dd>
  <dt>new labels</dt><dd data-key="new_labels">{{ s.new_labels if s.new_labels is not none else '-' }}</dd>
  <dt>retrain</dt><dd data-key="retrain_text">{{ retrain_text }}</dd>
  <dt>last gate decision</dt><dd data-key="gate_text">{{ gate_text }}</dd>
</dl>
<h2>Files per state</h2>
<div class="table-wrap"><table id="counts"><tbody>
{% for state, n in s.counts.items() %}<tr><th>{{ state }}</th><td data-key="counts.{{ state }}">{{ n }}</td></tr>{% endfor %}
</tbody></table></div>
</section>
{% endblock %}
"""

_MODELS = """{% extends "base" %}
{% block main %}
<h1>Models</h1>
{% if m.pinned %}<p class="note">The config's <code>model:</code> pins {{ m.pinned }}: the daemon uses that one, not the versions below.</p>{% endif %}
{% if m.can_rollback %}
<form class="rollback" method="post" action="/api/models/rollback" data-api="rollback">
  <input type="hidden" name="csrf" value="{{ csrf }}">
  <button type="submit">Roll back to the previous version</button>
</form>{% endif %}
<p class="error" role="alert"></p>
{% for v in m.versions|reverse %}
<section class="model{{ ' active' if v.active else '' }}" id="model-{{ v.name }}">
  <h2>{{ v.name }} <small>{{ v.version }}</small>{% if v.active %} <span class="badge">active</span>{% endif %}</h2>
  <p>created {{ v.created or '?' }}; {{ v.genres|length }} genres: {{ v.genres|join(', ') }}; trained on {{ v.n_labels }} labels</p>
  {% if v.figures %}<ul class="figures">
  {% for f in v.figures %}<li>accuracy <strong>{{ f.accuracy|pct }}</strong> on {{ f.test_music }}{% if f.notes %} ({{ f.notes }}){% endif %}</li>
  {% endfor %}</ul>{% else %}<p>accuracy: not measured</p>{% endif %}
  {% set g = v.metrics %}
  {% if 'held_out_labels' in g %}
  <div class="table-wrap"><table class="gate"><thead><tr><th></th><th>held-out labels</th><th>old genres (rehearsal)</th></tr></thead><tbody>
    <tr><th>this model</th><td>{{ g.get('held_out_labels')|pct }}</td><td>{{ g.get('held_out_old_genres')|pct }}</td></tr>
    <tr><th>model it replaced</th><td>{{ g.get('active_held_out_labels')|pct }}</td><td>{{ g.get('active_held_out_old_genres')|pct }}</td></tr>
  </tbody></table></div>{% endif %}
  {% if v.has_confusion %}<img alt="confusion matrix of {{ v.name }}" src="/models/{{ v.name }}/confusion.png" loading="lazy">{% endif %}
</section>
{% endfor %}
{% endblock %}
"""

_ERROR = """{% extends "base" %}
{% block main %}
<h1>{{ status }}: not done</h1>
<p class="error" role="alert" id="reason">{{ message }}</p>
<p><a href="{{ back }}">back</a></p>
{% endblock %}
"""


def _pct(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "-"
    return f"{100 * value:.0f}%"


def _when(value: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))
    except (TypeError, ValueError, OverflowError):
        return "?"


def _duration(value: Any) -> str:
    """Seconds as ``m:ss`` (``h:mm:ss`` from an hour); empty when unknown."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        return ""
    s = int(round(value))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _query(params: dict[str, Any]) -> str:
    """A query string of ``params`` without the empty ones and without the default sort, so the
    review list's links keep the chosen order and filter and stay short."""
    keep = {k: v for k, v in params.items() if v not in (None, "") and not (k == "sort" and v == "newest")}
    return urlencode(keep)


def _entries(items: Iterable[Any]) -> list[list[Any]]:
    """Recent placements as entries: a song alone, or every track of one album together at the
    place of its newest track (an album moves and comes back as one, so it is shown as one)."""
    out: list[list[Any]] = []
    albums: dict[int, list[Any]] = {}
    for it in items:
        if it.album is None:
            out.append([it])
        elif it.album in albums:
            albums[it.album].append(it)
        else:
            albums[it.album] = [it]
            out.append(albums[it.album])
    for tracks in albums.values():
        tracks.sort(key=lambda t: (t.disc or 0, t.track or 0, t.name))
    return out


_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"base": _BASE, "parts": _PARTS, "review": _REVIEW, "recent": _RECENT,
                              "status": _STATUS, "models": _MODELS, "error": _ERROR}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["pct"] = _pct
_ENV.filters["when"] = _when
_ENV.filters["duration"] = _duration
_ENV.filters["query"] = _query
_ENV.filters["entries"] = _entries
_ENV.globals["sort_words"] = SORT_WORDS


def render(name: str, **context: Any) -> str:
    """The page ``name`` rendered with ``context`` (every value HTML-escaped)."""
    return _ENV.get_template(name).render(**context)
