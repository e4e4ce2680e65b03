"""The page's one script, served as ``/assets/app.js``: plain JavaScript, no build step.

It turns the forms (which work without it: they post, the server redirects back) into in-place
requests to the JSON API, and makes the review list quick to work through: a current card moved
with j/k or the arrows, space to play it, 1-9 to file it with its n-th genre, g or / to type one,
x to select it, "accept the suggestion for all selected", and the sort and filter selects applied
on change. What happened is said in ``#flash``, a polite live region.
"""

from __future__ import annotations

__all__ = ["APP_JS"]

APP_JS = r"""
"use strict";
(function () {
  document.documentElement.classList.add("js");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const flash = document.getElementById("flash");
  function say(text, good) { flash.textContent = text; flash.className = good ? "good" : "bad"; }
  function holder(form) { return form.closest("li.song, li.entry, main"); }
  function untagged(data) {
    return data.untagged && data.untagged.length ? "; its genre tag was not written (" + data.untagged[0].reason + ")" : "";
  }
  function buttons(el, off) { el.querySelectorAll("button").forEach(function (b) { b.disabled = off; }); }
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: r.status + " " + r.statusText }; }
    if (!r.ok) { throw new Error(data.error || (r.status + " " + r.statusText)); }
    return data;
  }

  // --- review: the cards, the current one, filing ------------------------------------------------
  const list = document.getElementById("review-list");
  let current = null;
  function cards() { return list ? Array.from(list.querySelectorAll("li.song")) : []; }
  function setCurrent(card, scroll) {
    if (current === card) { if (card && scroll) { card.scrollIntoView({ block: "nearest" }); } return; }
    if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
    current = card;
    if (!card) { return; }
    card.classList.add("current");
    card.setAttribute("aria-current", "true");
    if (scroll) {
      card.setAttribute("tabindex", "-1");
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  }
  function step(delta) {
    const all = cards();
    if (!all.length) { return; }
    const at = all.indexOf(current);
    setCurrent(all[Math.min(all.length - 1, Math.max(0, at < 0 ? 0 : at + delta))], true);
  }
  function selected() { return cards().filter(function (c) { const b = c.querySelector("input.select"); return b && b.checked; }); }
  function countSelected() {
    const accept = document.getElementById("accept-selected");
    if (!accept) { return; }
    const n = selected().length;
    accept.disabled = n === 0;
    accept.textContent = "Accept the suggestion for all selected" + (n ? " (" + n + ")" : "");
    const all = document.getElementById("select-all");
    const total = cards().length;
    all.checked = total > 0 && n === total;
    all.indeterminate = n > 0 && n < total;
  }
  function removeCard(card) {
    const next = card.nextElementSibling || card.previousElementSibling;
    const wasCurrent = card === current;
    if (wasCurrent) { current = null; }
    card.remove();
    const count = document.getElementById("review-count");
    count.textContent = String(Math.max(0, Number(count.textContent) - 1));
    if (wasCurrent) { setCurrent(next, true); }
    if (!cards().length) {
      const empty = document.createElement("p");
      empty.id = "empty";
      empty.textContent = Number(count.textContent) ? "This page is done: reload for the next." : "Nothing is waiting for review.";
      list.after(empty);
      const bulk = document.getElementById("bulk");
      if (bulk) { bulk.remove(); }
    }
    countSelected();
    return next;
  }
  // File ``card`` as ``genre`` (the model's name or a typed one); true when it was filed.
  async function fileCard(card, genre, shown) {
    const err = card.querySelector(".error");
    const progress = card.querySelector(".progress");
    err.textContent = "";
    progress.textContent = "filing into " + (shown || genre) + "\u2026";
    card.classList.add("busy");
    card.setAttribute("aria-busy", "true");
    buttons(card, true);
    try {
      const data = await post("/api/review/" + card.dataset.id, { genre: genre });
      const next = removeCard(card);
      const what = data.message || (data.name + " filed into " + data.genre + untagged(data));
      say(what + (next && current === next ? ". Next: " + next.dataset.label : ""), true);
      return true;
    } catch (e) {
      progress.textContent = "";
      err.textContent = e.message;
      say(card.dataset.label + ": " + e.message, false);
      return false;
    } finally {
      card.classList.remove("busy");
      card.removeAttribute("aria-busy");
      buttons(card, false);
    }
  }
  async function acceptSelected() {
    const chosen = selected();
    const accept = document.getElementById("accept-selected");
    accept.disabled = true;
    let filed = 0;
    for (const [i, card] of chosen.entries()) {
      say("filing " + (i + 1) + " of " + chosen.length + ": " + card.dataset.label, true);
      if (!card.dataset.top) {
        card.querySelector(".error").textContent = "no suggestion to accept: type a genre";
        continue;
      }
      if (await fileCard(card, card.dataset.top, card.dataset.topName)) { filed += 1; }
    }
    const failed = chosen.length - filed;
    say("filed " + filed + " of " + chosen.length + " at its suggestion" +
        (failed ? "; " + failed + " not filed (the reason is on each card)" : ""), failed === 0);
    countSelected();
  }
  function togglePlay(card) {
    const players = Array.from(card.querySelectorAll("audio"));
    const playing = players.find(function (a) { return !a.paused; });
    if (playing) { playing.pause(); return; }
    if (players.length) { players[0].play().catch(function (e) { say("cannot play: " + e.message, false); }); }
  }
  if (list) {
    list.addEventListener("focusin", function (e) { const c = e.target.closest("li.song"); if (c) { setCurrent(c, false); } });
    list.addEventListener("pointerdown", function (e) { const c = e.target.closest("li.song"); if (c) { setCurrent(c, false); } });
    list.addEventListener("change", function (e) { if (e.target.matches("input.select")) { countSelected(); } });
    setCurrent(cards()[0] || null, false);
    const all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        cards().forEach(function (c) { c.querySelector("input.select").checked = all.checked; });
        countSelected();
      });
      document.getElementById("accept-selected").addEventListener("click", acceptSelected);
    }
  }
  // one song at a time: starting one pauses the others
  document.addEventListener("play", function (e) {
    document.querySelectorAll("audio").forEach(function (a) { if (a !== e.target && !a.paused) { a.pause(); } });
    const c = e.target.closest && e.target.closest("li.song");
    if (c) { setCurrent(c, false); }
  }, true);

  // --- the keys ------------------------------------------------------------------------------------
  const keys = document.getElementById("keys");
  const keysOpen = document.getElementById("keys-open");
  if (keysOpen && keys) { keysOpen.addEventListener("click", function () { keys.showModal(); }); }
  function typing(el) {
    if (!el || !el.closest) { return false; }
    if (el.closest("textarea, select, [contenteditable=''], [contenteditable=true]")) { return true; }
    return el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "reset"].includes(el.type);
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) { return; }
    if (keys && keys.open) { return; }  // the dialog: Esc closes it
    const native = e.target.closest ? e.target.closest("button, a, summary, audio") : null;
    const key = e.key;
    if (key === "?" && keys) { e.preventDefault(); keys.showModal(); return; }
    if (!list || !current) { return; }
    if (key === "j" || (key === "ArrowDown" && !(native && native.tagName === "AUDIO"))) { e.preventDefault(); step(1); }
    else if (key === "k" || (key === "ArrowUp" && !(native && native.tagName === "AUDIO"))) { e.preventDefault(); step(-1); }
    else if (key === " " && !native) { e.preventDefault(); togglePlay(current); }
    else if (/^[1-9]$/.test(key)) {
      e.preventDefault();
      const b = current.querySelector('form.pick button[data-n="' + key + '"]');
      if (b) { fileCard(current, b.value, b.dataset.name); }
      else { say(current.dataset.label + " has no genre number " + key, false); }
    } else if (key === "g" || key === "/") {
      e.preventDefault();
      const field = current.querySelector("form.typed input[name=genre]");
      field.focus();
      current.scrollIntoView({ block: "nearest" });
    } else if (key === "x") {
      const box = current.querySelector("input.select");
      if (box) { e.preventDefault(); box.checked = !box.checked; countSelected(); }
    }
  });

  // --- sort and filter: apply on change ------------------------------------------------------------
  const view = document.getElementById("view");
  if (view) { view.addEventListener("change", function () { view.requestSubmit(); }); }

  // --- every form: in place ------------------------------------------------------------------------
  const done = {
    correct(form, data) {
      const entry = form.closest("li.entry");
      entry.querySelector(".now").textContent = data.genre + " (by you)";
      form.reset();
      say(data.kind === "album" ? data.message : data.name + " moved into " + data.genre + untagged(data), true);
    },
    undo(form, data) {
      const entry = form.closest("li.entry");
      entry.classList.add("undone");
      entry.querySelector(".now").textContent = "back in the inbox";
      entry.querySelectorAll("form, audio").forEach(function (el) { el.remove(); });
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
    if (kind === "review") {
      const card = form.closest("li.song");
      const shown = submitter && submitter.name === "genre" ? submitter.dataset.name : body.genre;
      await fileCard(card, body.genre, shown);
      return;
    }
    const err = holder(form).querySelector(".error");
    if (err) { err.textContent = ""; }
    buttons(form, true);
    try {
      done[kind](form, await post(form.action, body));
    } catch (e) {
      if (err) { err.textContent = e.message; }
      say(e.message, false);
    } finally {
      buttons(form, false);
    }
  });

  // --- status: refreshed every 2 s -----------------------------------------------------------------
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
