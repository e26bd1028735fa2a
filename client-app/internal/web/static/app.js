// Progressive enhancement of the techlist pages. Without this file every
// feature but live updates works: the form posts, "More techs" and
// "Refresh" are links. With it:
//   - the page listens to /events (Server-Sent Events, this origin): a
//     stored tech appears at the top of the list at once, a tech you
//     submitted turns from "queued" into its stored form, and the status
//     numbers stay current;
//   - a queued tech not stored within the time limit says so;
//   - "More techs" loads the next page below the list, in place.
// Data is only ever written with textContent and attributes; markup comes
// from the page's own <template> elements, never from strings.
(() => {
  "use strict";

  const root = document.querySelector("main[data-live]");
  if (!root) return;

  const list = document.getElementById("techs");
  const firstPage = Boolean(list) && list.dataset.firstPage === "true";
  const announcer = document.getElementById("announcer");
  const lateNote = root.dataset.lateNote || "";
  const lostNote = root.dataset.lostNote || "";

  // ---- status of the live updates

  function setLive(state, message) {
    for (const el of document.querySelectorAll("[data-live-status]")) {
      el.textContent = message;
    }
    for (const el of document.querySelectorAll("[data-live-dot]")) {
      el.dataset.state = state;
    }
  }

  function announce(message) {
    if (announcer) announcer.textContent = message;
  }

  // ---- items of the list

  function itemFor(id) {
    if (!list) return null;
    for (const li of list.children) {
      if (li.dataset.id === id) return li;
    }
    return null;
  }

  function field(li, name) {
    return li.querySelector('[data-field="' + name + '"]');
  }

  function badge(kind) {
    const tpl = document.getElementById("tpl-badge-" + kind) || document.getElementById("tpl-badge-unknown");
    return tpl.content.firstElementChild.cloneNode(true);
  }

  function setBadge(li, kind) {
    const old = field(li, "badge");
    if (old) old.replaceWith(badge(kind));
  }

  function setNote(li, text) {
    const note = field(li, "note");
    note.textContent = text;
    note.hidden = !text;
  }

  // fill writes a stored tech (the view the server sends) into li.
  function fill(li, t) {
    li.dataset.id = t.id;
    li.dataset.state = t.state;
    delete li.dataset.lateIn;
    field(li, "text").textContent = t.text;
    const submitted = field(li, "submitted");
    submitted.dateTime = t.submitted_at;
    submitted.textContent = t.submitted;
    field(li, "submitted-wrap").hidden = !t.submitted_at;
    const stored = field(li, "stored");
    stored.dateTime = t.stored_at;
    stored.title = t.stored;
    stored.textContent = t.stored_short;
    field(li, "stored-after").textContent = "(" + t.stored_after + ")";
    field(li, "stored-sep").hidden = !t.submitted_at;
    field(li, "stored-wrap").hidden = !t.stored_at;
    setNote(li, t.note || "");
    setBadge(li, t.badge);
  }

  // The notice above the form follows the tech it is about (the texts are
  // the server's own, see handlers.go).
  function notice(id, text) {
    const box = document.querySelector("[data-notice-for]");
    if (box && box.dataset.noticeFor === id) box.querySelector("[data-notice]").textContent = text;
  }

  function flash(li) {
    li.dataset.fresh = "";
    setTimeout(() => { delete li.dataset.fresh; }, 2500);
  }

  function updateCount() {
    const n = list ? list.querySelectorAll('li[data-state="stored"]').length : 0;
    for (const el of document.querySelectorAll("[data-count]")) el.textContent = String(n);
  }

  function stored(t) {
    if (!list) return;
    let li = itemFor(t.id);
    if (li) {
      if (li.dataset.state === "stored") return; // already shown
      fill(li, t); // a queued tech of this browser: stored now
      flash(li);
      notice(t.id, "Stored: your tech is in the list with its priority.");
      announce("Stored: " + t.text + ", priority " + t.badge + ".");
      updateCount();
      return;
    }
    if (!firstPage) return; // later pages do not take new techs
    li = document.getElementById("tpl-tech").content.firstElementChild.cloneNode(true);
    fill(li, t);
    const empty = list.querySelector("li[data-empty]");
    if (empty) empty.remove();
    // Below this browser's own queued techs, above every stored one.
    let before = list.firstElementChild;
    while (before && before.dataset.state !== "stored") before = before.nextElementSibling;
    list.insertBefore(li, before);
    flash(li);
    announce("New tech: " + t.text + ", priority " + t.badge + ".");
    updateCount();
  }

  function late(li) {
    if (li.dataset.state !== "queued") return;
    li.dataset.state = "late";
    setBadge(li, "late");
    setNote(li, lateNote);
    notice(li.dataset.id, "Not stored yet: see the note beside your tech.");
    announce("Not stored yet: " + field(li, "text").textContent + ".");
  }

  function lost(id) {
    const li = itemFor(id);
    if (!li || li.dataset.state === "stored") return;
    li.dataset.state = "lost";
    delete li.dataset.lateIn;
    setBadge(li, "lost");
    setNote(li, lostNote);
    notice(id, "Not stored: see the note beside your tech.");
  }

  // A queued tech not stored within the time limit says so.
  if (list) {
    for (const li of list.querySelectorAll('li[data-state="queued"][data-late-in]')) {
      const wait = Math.max(0, Number(li.dataset.lateIn) || 0);
      setTimeout(() => late(li), wait);
    }
  }

  // ---- the status numbers

  function stats(view) {
    for (const [name, value] of Object.entries(view)) {
      if (typeof value !== "string") continue;
      for (const el of document.querySelectorAll('[data-stat="' + name + '"]')) {
        el.textContent = value;
      }
    }
  }

  // ---- the event stream

  function parse(ev) {
    try {
      return JSON.parse(ev.data);
    } catch {
      return null;
    }
  }

  if ("EventSource" in window && root.dataset.events) {
    setLive("wait", "Connecting…");
    let paused = false; // the server said live updates cannot work now
    const source = new EventSource(root.dataset.events);
    source.addEventListener("tech", (ev) => {
      const t = parse(ev);
      if (t && t.id) stored(t);
    });
    source.addEventListener("lost", (ev) => {
      const t = parse(ev);
      if (t && t.id) lost(t.id);
    });
    source.addEventListener("stats", (ev) => {
      const v = parse(ev);
      if (v) stats(v);
    });
    source.addEventListener("status", (ev) => {
      const s = parse(ev);
      if (!s) return;
      paused = !s.live;
      setLive(s.live ? "on" : "wait", s.message);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setLive("off", "Stopped. Refresh the page to see new techs.");
      } else if (!paused) {
        setLive("wait", "Reconnecting…");
      }
    });
    // Close the stream when the page goes; a page restored from the
    // back-forward cache is stale, so it is loaded again.
    window.addEventListener("pagehide", () => source.close());
    window.addEventListener("pageshow", (ev) => {
      if (ev.persisted) window.location.reload();
    });
  }

  // ---- "More techs" in place

  document.addEventListener("click", async (ev) => {
    const more = ev.target instanceof Element ? ev.target.closest("a[data-more]") : null;
    if (!more || !list || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    if (more.getAttribute("aria-busy") === "true") return;
    more.setAttribute("aria-busy", "true");
    try {
      const res = await fetch(more.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!res.ok) throw new Error("status " + res.status);
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      let firstNew = null;
      for (const li of doc.querySelectorAll('#techs > li[data-state="stored"]')) {
        if (itemFor(li.dataset.id)) continue;
        const item = document.importNode(li, true);
        list.append(item);
        firstNew = firstNew || item;
      }
      updateCount();
      const next = doc.querySelector("a[data-more]");
      if (next) {
        more.href = next.getAttribute("href");
        more.removeAttribute("aria-busy");
      } else {
        const done = document.createElement("span");
        done.className = more.dataset.doneClass || "";
        done.textContent = "That is all of them.";
        more.replaceWith(done);
      }
      if (firstNew) {
        // Keyboard users continue from the first tech just loaded.
        const text = field(firstNew, "text");
        text.tabIndex = -1;
        text.focus();
      }
    } catch {
      window.location.assign(more.href); // the link works without us
    }
  });
})();
