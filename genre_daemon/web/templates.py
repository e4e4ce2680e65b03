"""The page's HTML templates (Jinja2, autoescaped), script and style sheet.

Kept in Python strings rather than files so the package needs no data files to be installed;
no build step, no framework on the client: about a hundred lines of plain JavaScript that turn
the forms (which work without it) into in-place requests to the JSON API.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jinja2

__all__ = ["render", "APP_JS", "APP_CSS"]

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{ csrf }}">
<title>{{ title }} \N{EM DASH} genre-daemon</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body data-page="{{ page }}">
<header>
  <strong>genre-daemon</strong>
  <nav>
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

_REVIEW = """{% extends "base" %}
{% block main %}
<h1>Review: <span id="review-count">{{ total }}</span> waiting</h1>
<p class="hint">Songs the model was not sure of (top score below {{ min_confidence }}). Listen, then click
its genre or type a new one: the song moves into that genre folder and the next retrain learns from it.
An album is one card: its genre files the whole album, every track together.</p>
<datalist id="genres">{% for g in genres %}<option value="{{ g }}">{% endfor %}</datalist>
{% if not items %}<p id="empty">Nothing is waiting for review.</p>{% endif %}
<ol class="songs" id="review-list">
{% for it in items %}
<li class="song{{ ' album' if it.kind == 'album' else '' }}" id="song-{{ it.id }}" data-id="{{ it.id }}"
    data-kind="{{ it.kind }}"{% if it.kind == 'album' %} data-album="{{ it.album }}"{% endif %}>
  <div class="row1"><span class="name">{{ it.name }}</span>
    {% if it.kind == 'album' %}<span class="what">album, {{ it.tracks|length }} track{{ '' if it.tracks|length == 1 else 's' }}</span>{% endif %}
    <span class="guess">model: {{ it.genre_name or it.genre or '?' }} {{ it.confidence|pct }}</span></div>
  {% if it.kind == 'album' %}
  <ol class="tracks">
  {% for t in it.tracks %}<li class="track" id="track-{{ t.id }}" data-id="{{ t.id }}"><span class="track-name">{{ t.name }}</span>
    <small>{{ t.genre_name or t.genre or '?' }} {{ t.confidence|pct }}</small>
    <audio controls preload="none" src="/api/files/{{ t.id }}/audio"></audio></li>
  {% endfor %}</ol>
  {% else %}
  <audio controls preload="none" src="/api/files/{{ it.id }}/audio"></audio>
  {% endif %}
  <form class="pick" method="post" action="/api/review/{{ it.id }}" data-api="review">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    {% for g, p in it.top(3) %}<button type="submit" name="genre" value="{{ g }}" class="genre">{{ named(g) }} <small>{{ p|pct }}</small></button>
    {% endfor %}
  </form>
  <form class="typed" method="post" action="/api/review/{{ it.id }}" data-api="review">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input name="genre" list="genres" placeholder="another genre" aria-label="genre for {{ 'the album ' if it.kind == 'album' else '' }}{{ it.name }}" required maxlength="200">
    <button type="submit">{{ 'File the album' if it.kind == 'album' else 'File' }}</button>
  </form>
  <p class="error" role="alert"></p>
</li>
{% endfor %}
</ol>
{% if pages > 1 %}
<nav class="pages">
  {% if page_no > 1 %}<a href="/?page={{ page_no - 1 }}" rel="prev">\N{LEFTWARDS ARROW} newer</a>{% endif %}
  <span>page {{ page_no }} of {{ pages }}</span>
  {% if page_no < pages %}<a href="/?page={{ page_no + 1 }}" rel="next">older \N{RIGHTWARDS ARROW}</a>{% endif %}
</nav>
{% endif %}
{% endblock %}
"""

_RECENT = """{% extends "base" %}
{% block main %}
<h1>Recent placements</h1>
<p class="hint">The newest {{ items|length }} files the daemon placed. "Move" files one into another genre
(a correction the next retrain learns from); "Undo" puts it back where it came from. On a track of an
album both act on the whole album.</p>
<datalist id="genres">{% for g in genres %}<option value="{{ g }}">{% endfor %}</datalist>
<table id="recent">
<thead><tr><th>when</th><th>file</th><th>the daemon said</th><th>now in</th><th>listen</th><th>wrong genre?</th><th></th></tr></thead>
<tbody>
{% for it in items %}
<tr id="move-{{ it.move }}" data-move="{{ it.move }}" class="{{ 'undone' if it.undone else '' }}"{% if it.album %} data-album="{{ it.album }}"{% endif %}>
  <td>{{ it.time|when }}</td>
  <td class="name">{{ it.name }}{% if it.album %}<br><small class="album">album {{ it.album_name }} ({{ it.album_tracks }} track{{ '' if it.album_tracks == 1 else 's' }})</small>{% endif %}</td>
  <td>{% if it.kind == 'review' %}review ({{ it.genre_name or it.genre or '?' }} {{ it.confidence|pct }}){% else %}{{ it.genre_name or it.genre }} {{ it.confidence|pct }}{% endif %}</td>
  <td class="now">{{ it.now }}{% if it.by_you %} <small>(by you)</small>{% endif %}</td>
  <td>{% if it.playable %}<audio controls preload="none" src="/api/files/{{ it.file }}/audio"></audio>{% endif %}</td>
  <td>{% if not it.undone and it.playable %}
    <form class="correct" method="post" action="/api/moves/{{ it.move }}/genre" data-api="correct">
      <input type="hidden" name="csrf" value="{{ csrf }}">
      <input name="genre" list="genres" placeholder="genre" aria-label="right genre for {{ 'the album ' ~ it.album_name if it.album else it.name }}" required maxlength="200">
      {% if it.album %}<button type="submit" title="moves the whole album {{ it.album_name }} ({{ it.album_tracks }} tracks)">Move album</button>
      {% else %}<button type="submit">Move</button>{% endif %}
    </form>{% endif %}</td>
  <td>{% if not it.undone %}
    <form class="undo" method="post" action="/api/moves/{{ it.move }}/undo" data-api="undo">
      <input type="hidden" name="csrf" value="{{ csrf }}">
      {% if it.album %}<button type="submit" title="puts the whole album {{ it.album_name }} ({{ it.album_tracks }} tracks) back in the inbox">Undo album</button>
      {% else %}<button type="submit">Undo</button>{% endif %}
    </form>{% endif %}<p class="error" role="alert"></p></td>
</tr>
{% endfor %}
</tbody>
</table>
{% if not items %}<p id="empty">Nothing placed yet.</p>{% endif %}
{% endblock %}
"""

_STATUS = """{% extends "base" %}
{% block main %}
<h1>Status</h1>
<section id="status" data-poll="/api/status">
<dl>
  <dt>daemon</dt><dd data-key="daemon">{{ daemon }}</dd>
  <dt>model</dt><dd data-key="model_version">{{ s.model_version or '-' }}</dd>
  <dt>queue</dt><dd data-key="queue_depth">{{ s.queue_depth }}</dd>
  <dt>waiting in review</dt><dd data-key="in_review">{{ s.in_review }}</dd>
  <dt>left alone in the inbox</dt><dd data-key="left_alone">{{ s.left_alone if s.left_alone is not none else '-' }}</dd>
  <dt>new labels</dt><dd data-key="new_labels">{{ s.new_labels if s.new_labels is not none else '-' }}</dd>
  <dt>retrain</dt><dd data-key="retrain_text">{{ retrain_text }}</dd>
  <dt>last gate decision</dt><dd data-key="gate_text">{{ gate_text }}</dd>
</dl>
<h2>Files per state</h2>
<table id="counts"><tbody>
{% for state, n in s.counts.items() %}<tr><th>{{ state }}</th><td data-key="counts.{{ state }}">{{ n }}</td></tr>{% endfor %}
</tbody></table>
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
  <table class="gate"><thead><tr><th></th><th>held-out labels</th><th>old genres (rehearsal)</th></tr></thead><tbody>
    <tr><th>this model</th><td>{{ g.get('held_out_labels')|pct }}</td><td>{{ g.get('held_out_old_genres')|pct }}</td></tr>
    <tr><th>model it replaced</th><td>{{ g.get('active_held_out_labels')|pct }}</td><td>{{ g.get('active_held_out_old_genres')|pct }}</td></tr>
  </tbody></table>{% endif %}
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

APP_CSS = """
:root { color-scheme: light dark; --accent: #2a6fdb; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; }
header { display: flex; gap: 2em; align-items: center; padding: .6em 1em; border-bottom: 1px solid #8884; }
nav a { margin-right: 1em; } nav a[aria-current] { font-weight: bold; }
main { padding: 0 1em 2em; max-width: 70em; }
.hint, .note { color: #888; }
#flash { padding: 0 1em; min-height: 1.4em; }
#flash.bad, .error { color: #c33; } #flash.good { color: #2a2; }
ol.songs { list-style: none; padding: 0; }
li.song { border: 1px solid #8884; border-radius: 6px; padding: .6em; margin: .6em 0; }
li.song .row1 { display: flex; justify-content: space-between; gap: 1em; }
li.song .name, td.name { font-weight: 600; overflow-wrap: anywhere; }
li.song .what, td.name small.album { color: #888; font-weight: normal; }
ol.tracks { list-style: none; padding-left: .6em; margin: .3em 0; } li.track { margin: .1em 0; }
li.track .track-name { overflow-wrap: anywhere; } li.track audio { vertical-align: middle; height: 1.8em; }
audio { height: 2em; max-width: 100%; margin: .3em 0; }
form { display: inline-flex; gap: .3em; margin: .2em .6em .2em 0; flex-wrap: wrap; }
button { cursor: pointer; } button.genre { border-color: var(--accent); }
table { border-collapse: collapse; } td, th { padding: .2em .5em; text-align: left; vertical-align: top; }
tr.undone { opacity: .55; }
.badge { background: var(--accent); color: white; border-radius: 3px; padding: 0 .3em; font-size: .8em; }
section.model { border-top: 1px solid #8884; margin-top: 1em; } section.model img { max-width: 100%; }
.pages { display: flex; gap: 1em; }
"""

APP_JS = r"""
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const flash = document.getElementById("flash");
  function say(text, good) { flash.textContent = text; flash.className = good ? "good" : "bad"; }
  function holder(form) { return form.closest("li.song, tr, main"); }
  function untagged(data) {
    return data.untagged && data.untagged.length ? "; its genre tag was not written (" + data.untagged[0].reason + ")" : "";
  }
  // Recent: the row of a form, with every other row of its album (an album moves as one)
  function rows(form) {
    const tr = form.closest("tr");
    const album = tr.dataset.album;
    return album ? Array.from(document.querySelectorAll('tr[data-album="' + album + '"]')) : [tr];
  }
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: r.status + " " + r.statusText }; }
    if (!r.ok) { throw new Error(data.error || (r.status + " " + r.statusText)); }
    return data;
  }
  const done = {
    review(form, data) {
      const li = form.closest("li.song");
      li.remove();
      const count = document.getElementById("review-count");
      count.textContent = String(Math.max(0, Number(count.textContent) - 1));
      say(data.message || (data.name + " filed into " + data.genre + untagged(data)), true);
    },
    correct(form, data) {
      rows(form).forEach(function (tr) { tr.querySelector(".now").textContent = data.genre + " (by you)"; });
      form.reset();
      say(data.kind === "album" ? data.message : data.name + " moved into " + data.genre + untagged(data), true);
    },
    undo(form, data) {
      rows(form).forEach(function (tr) {
        tr.classList.add("undone");
        tr.querySelector(".now").textContent = "back in the inbox";
        tr.querySelectorAll("form, audio").forEach(function (el) { el.remove(); });
      });
      say(data.kind === "album" ? data.message : "put back: " + data.restored, true);
    },
    rollback(form, data) {
      say("active now: " + data.active + " (" + data.version + ")" + (data.note ? "; " + data.note : ""), true);
      setTimeout(function () { location.reload(); }, 600);
    },
  };
  document.addEventListener("submit", async function (event) {
    const form = event.target;
    const kind = form.dataset.api;
    if (!kind) { return; }
    event.preventDefault();
    const body = {};
    const submitter = event.submitter;
    if (submitter && submitter.name === "genre") { body.genre = submitter.value; }
    else if (form.elements.genre) { body.genre = form.elements.genre.value.trim(); }
    const err = holder(form).querySelector(".error");
    if (err) { err.textContent = ""; }
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    try {
      done[kind](form, await post(form.action, body));
    } catch (e) {
      if (err) { err.textContent = e.message; }
      say(e.message, false);
    } finally {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    }
  });
  const poll = document.querySelector("[data-poll]");
  if (poll) {
    async function refresh() {
      try {
        const r = await fetch(poll.dataset.poll, { credentials: "same-origin" });
        if (r.ok) {
          const s = await r.json();
          poll.querySelectorAll("[data-key]").forEach(function (el) {
            let v = s;
            for (const k of el.dataset.key.split(".")) { v = (v === null || v === undefined) ? v : v[k]; }
            if (v !== undefined) { el.textContent = (v === null) ? "-" : String(v); }
          });
        }
      } catch (e) { /* the next tick tries again */ }
      setTimeout(refresh, 2000);
    }
    setTimeout(refresh, 2000);
  }
})();
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


_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"base": _BASE, "review": _REVIEW, "recent": _RECENT, "status": _STATUS,
                              "models": _MODELS, "error": _ERROR}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["pct"] = _pct
_ENV.filters["when"] = _when


def render(name: str, **context: Any) -> str:
    """The page ``name`` rendered with ``context`` (every value HTML-escaped)."""
    return _ENV.get_template(name).render(**context)
