"""The page's one style sheet, served as ``/assets/app.css``.

A Python string so the package needs no data files. Colours are custom properties with a dark set
under ``prefers-color-scheme: dark``; the layout is a single column of cards that fits a 390 px
phone and widens to a readable measure at 1280 px. No inline styles anywhere: the CSP allows
only this sheet (``style-src 'self'``).
"""

from __future__ import annotations

__all__ = ["APP_CSS"]

APP_CSS = """
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --fg: #1b1d22; --muted: #5c6270; --line: #d9dde4; --soft: #eef1f5;
  --accent: #2456c4; --accent-fg: #ffffff; --accent-soft: #e5ecfb; --good: #1c7a3a; --bad: #b3261e;
  --focus: #e08a00; --radius: 10px; --shadow: 0 1px 2px #0000000f, 0 2px 8px #0000000a;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111317; --card: #1b1e24; --fg: #e7e9ee; --muted: #a2a8b5; --line: #2f333c; --soft: #242830;
    --accent: #7ea6ff; --accent-fg: #0c1222; --accent-soft: #1e2a45; --good: #63d48f; --bad: #ff8b80;
    --focus: #ffb547; --shadow: none;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 4px; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 1.2rem 0 .4rem; }
h2 { font-size: 1.15rem; line-height: 1.3; margin: 1.4rem 0 .5rem; }
.meta h2, section.model h2, dialog h2 { margin: 0; }
small, .small { font-size: .82rem; }
code { font-size: .9em; }
kbd { font: 600 .72rem/1 ui-monospace, monospace; border: 1px solid var(--line); border-bottom-width: 2px;
  border-radius: 4px; padding: .12rem .3rem; background: var(--soft); color: var(--fg); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }

/* header and navigation */
.top { position: sticky; top: 0; z-index: 5; background: var(--card); border-bottom: 1px solid var(--line);
  display: flex; flex-wrap: wrap; align-items: center; gap: .3rem 1.2rem; padding: .5rem 1rem; }
.brand { font-weight: 700; letter-spacing: .01em; }
.top nav { display: flex; flex-wrap: wrap; gap: .2rem; }
.top nav a { text-decoration: none; color: var(--muted); padding: .35rem .7rem; border-radius: 999px; }
.top nav a:hover { background: var(--soft); color: var(--fg); }
.top nav a[aria-current] { background: var(--accent-soft); color: var(--accent); font-weight: 600; }
main { max-width: 58rem; margin: 0 auto; padding: 0 1rem 3rem; }
.hint, .note { color: var(--muted); margin: .2rem 0 1rem; max-width: 46rem; }
#flash { max-width: 58rem; margin: 0 auto; padding: .5rem 1rem 0; min-height: 2.1rem; font-weight: 500; }
#flash:empty { padding-top: 0; min-height: .5rem; }
#flash.bad, .error { color: var(--bad); } #flash.good { color: var(--good); }
.error:empty, .progress:empty { display: none; }
.error, .progress { margin: .4rem 0 0; font-size: .9rem; }
.progress { color: var(--muted); }

/* controls */
button, select, input { font: inherit; color: inherit; }
button, select, input[type=text], input:not([type]) { min-height: 2.3rem; border-radius: 8px;
  border: 1px solid var(--line); background: var(--card); padding: .3rem .7rem; }
button { cursor: pointer; background: var(--soft); }
button:hover { border-color: var(--accent); }
button:disabled { opacity: .55; cursor: progress; }
button.primary { background: var(--accent); color: var(--accent-fg); border-color: var(--accent); font-weight: 600; }
input::placeholder { color: var(--muted); }
input[type=checkbox] { width: 1.15rem; height: 1.15rem; accent-color: var(--accent); margin: 0; }
form { margin: 0; }
.toolbar { display: flex; flex-wrap: wrap; align-items: end; gap: .6rem 1rem; margin: 0 0 .8rem; }
.toolbar label { display: flex; flex-direction: column; font-size: .82rem; color: var(--muted); gap: .15rem; }
.toolbar select { color: var(--fg); min-width: 9rem; }
.toolbar .check { flex-direction: row; align-items: center; gap: .45rem; font-size: .95rem; color: var(--fg);
  min-height: 2.3rem; }
.bulk { display: flex; flex-wrap: wrap; align-items: center; gap: .6rem 1rem; margin: 0 0 .8rem; }
.js .no-js, .needs-js { display: none; } .js .needs-js { display: flex; }
.keys-button { margin-left: auto; }

/* review cards */
ol.songs { list-style: none; padding: 0; margin: 0; }
li.song { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  box-shadow: var(--shadow); padding: .9rem; margin: 0 0 .8rem; scroll-margin: 4.5rem 0 1rem; }
li.song.current { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent); }
li.song.busy { opacity: .6; }
.card-head { display: flex; gap: .8rem; align-items: flex-start; }
.card-head > input[type=checkbox] { margin-top: .3rem; flex: none; }
.cover { flex: none; width: 4.5rem; height: 4.5rem; border-radius: 8px; object-fit: cover;
  background: var(--soft); border: 1px solid var(--line); }
li.album .cover { width: 6.5rem; height: 6.5rem; }
.cover.placeholder { display: grid; place-items: center; color: var(--muted); font-size: 1.8rem; }
li.album .cover.placeholder { font-size: 2.4rem; }
.meta { flex: 1; min-width: 0; }
.meta .title { font-size: 1.1rem; font-weight: 650; overflow-wrap: anywhere; }
.meta .artist { margin: .05rem 0 0; overflow-wrap: anywhere; }
.meta .what, .meta .length { color: var(--muted); font-size: .82rem; }
.meta .length::before { content: " \\00b7  "; }
.meta .file { display: block; color: var(--muted); font-size: .82rem; overflow-wrap: anywhere; }
.guess { flex: none; color: var(--muted); font-size: .85rem; text-align: right; margin: .15rem 0 0; }
.guess { font-weight: 600; } .guess .pct { font-weight: normal; }
.why { color: var(--muted); font-size: .85rem; margin: .5rem 0 0; overflow-wrap: anywhere; }
li.song > audio { display: block; width: 100%; margin: .7rem 0 0; }
audio { height: 2.4rem; max-width: 100%; }
ol.tracks { list-style: none; margin: .7rem 0 0; padding: 0; border-top: 1px solid var(--line); }
li.track { display: grid; grid-template-columns: 2.2rem 1fr auto; align-items: center; gap: .1rem .6rem;
  padding: .35rem 0; border-bottom: 1px solid var(--line); }
li.track .no { color: var(--muted); text-align: right; font-variant-numeric: tabular-nums; }
li.track .track-name { min-width: 0; overflow-wrap: anywhere; }
li.track .track-artist { color: var(--muted); font-size: .85rem; }
li.track .dur { color: var(--muted); font-variant-numeric: tabular-nums; font-size: .9rem; }
li.track audio { grid-column: 2 / 4; width: 100%; height: 2.2rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem .8rem; align-items: flex-start; margin-top: .8rem; }
form.pick { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
button.genre { border-color: var(--accent); background: var(--accent-soft); display: inline-flex;
  align-items: center; gap: .4rem; }
button.genre small { color: var(--muted); }
button.genre:first-of-type { background: var(--accent); color: var(--accent-fg); font-weight: 600; }
button.genre:first-of-type small, button.genre:first-of-type kbd { color: var(--accent-fg); }
button.genre:first-of-type kbd { background: transparent; border-color: var(--accent-fg); }
details.more { display: inline-block; }
details.more summary { cursor: pointer; color: var(--accent); padding: .35rem .3rem; list-style: none; }
details.more summary::-webkit-details-marker { display: none; }
details.more[open] { display: flex; flex-wrap: wrap; gap: .4rem; flex-basis: 100%; }
details.more[open] summary { flex-basis: 100%; padding-bottom: 0; }
form.typed { display: flex; gap: .4rem; flex: 1 1 16rem; max-width: 26rem; }
form.typed input { flex: 1; min-width: 0; }
@media (hover: none) { button kbd { display: none; } }
.pages { display: flex; gap: 1rem; align-items: center; justify-content: center; margin: 1.2rem 0; }
#empty { padding: 2rem 1rem; text-align: center; color: var(--muted); background: var(--card);
  border: 1px dashed var(--line); border-radius: var(--radius); }

/* the keys dialog */
dialog { border: 1px solid var(--line); border-radius: var(--radius); background: var(--card); color: var(--fg);
  max-width: min(28rem, calc(100vw - 2rem)); padding: 1rem 1.2rem; }
dialog::backdrop { background: #0008; }
dialog dl { display: grid; grid-template-columns: auto 1fr; gap: .35rem 1rem; margin: .6rem 0 1rem; }
dialog dt { text-align: right; white-space: nowrap; } dialog dd { margin: 0; }

/* recent placements: one entry per song or album */
ol.recent { list-style: none; padding: 0; margin: 0; }
li.entry { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  box-shadow: var(--shadow); padding: .8rem .9rem; margin: 0 0 .7rem; }
li.entry.undone { opacity: .6; }
li.entry .cover { width: 3.5rem; height: 3.5rem; }
li.entry.album .cover { width: 4.5rem; height: 4.5rem; }
.facts { display: flex; flex-wrap: wrap; gap: .1rem 1.2rem; margin: .5rem 0 0; color: var(--muted); font-size: .9rem; }
.facts div { display: flex; gap: .35rem; } .facts dt { color: var(--muted); } .facts dd { margin: 0; color: var(--fg); }
li.entry > audio { display: block; width: 100%; margin: .6rem 0 0; }
li.entry details.tracks { margin: .6rem 0 0; }
li.entry details.tracks summary { cursor: pointer; color: var(--accent); }
li.entry details.tracks ol { list-style: none; padding: 0; margin: .3rem 0 0; }
form.correct { display: flex; gap: .4rem; flex: 1 1 16rem; max-width: 26rem; }
form.correct input { flex: 1; min-width: 0; }

/* status and models */
dl.facts-table { display: grid; grid-template-columns: minmax(8rem, max-content) 1fr; gap: .4rem 1.2rem;
  background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); padding: .9rem; margin: 0 0 1rem; }
dl.facts-table dt { color: var(--muted); } dl.facts-table dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); }
td, th { padding: .35rem .8rem; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
th { font-weight: 600; } td { font-variant-numeric: tabular-nums; }
.table-wrap { max-width: 100%; overflow-x: auto; }
.badge { background: var(--accent); color: var(--accent-fg); border-radius: 999px; padding: .05rem .55rem;
  font-size: .75rem; font-weight: 600; vertical-align: middle; }
section.model { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: .9rem; margin: 0 0 1rem; overflow-wrap: anywhere; }
section.model.active { border-color: var(--accent); }
section.model img { display: block; max-width: 100%; height: auto; margin-top: .6rem; border-radius: 6px; }
section.model h2 small { color: var(--muted); font-weight: normal; }
form.rollback { margin: 0 0 1rem; }

/* phones */
@media (max-width: 560px) {
  h1 { font-size: 1.3rem; }
  main { padding: 0 .75rem 2.5rem; }
  .top { padding: .4rem .75rem; gap: .1rem .6rem; }
  .top nav a { padding: .3rem .55rem; }
  .cover { width: 3.5rem; height: 3.5rem; }
  li.album .cover { width: 4.75rem; height: 4.75rem; }
  .card-head { flex-wrap: wrap; }
  .guess { flex-basis: 100%; text-align: left; order: 5; margin: 0; }
  dl.facts-table { grid-template-columns: 1fr; gap: 0; }
  dl.facts-table dt { font-size: .82rem; margin-top: .45rem; } dl.facts-table dt:first-child { margin-top: 0; }
  .toolbar label { flex: 1 1 8rem; } .toolbar select { min-width: 0; width: 100%; }
  .keys-button { display: none; }
  form.typed, form.correct { max-width: none; }
}
"""
