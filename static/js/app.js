// Progressive enhancement only: every page works without this file. No dependencies.
(function () {
  "use strict";

  var ACTIVE = ["queued", "submitting", "in_progress", "downloading"];

  function statusOf(el) { return ((el && el.getAttribute("data-state")) || "").split(":")[0]; }
  function text(el) { return el ? el.textContent.replace(/\s+/g, " ").trim() : ""; }
  function shorten(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // Screen-reader announcements through a polite live region that stays in the page.
  function announcer(region) {
    var timer = null;
    return function (message) {
      if (!region || !message) return;
      clearTimeout(timer);
      region.textContent = "";
      // A short pause makes screen readers notice a repeated message.
      timer = setTimeout(function () { region.textContent = message; }, 120);
    };
  }

  // Describe a card's status in words, e.g. “A paper boat…”: Ready.
  function describe(card) {
    var prompt = shorten(text(card.querySelector(".gen-prompt")), 60);
    var label = text(card.querySelector("[data-status-label]"));
    var message = "“" + prompt + "”: " + label + ".";
    var error = card.querySelector(".gen-error-title");
    if (error) message += " " + text(error).replace(/^Error:\s*/, "");
    return message;
  }

  function focusables(root) {
    return Array.prototype.slice.call(root.querySelectorAll("a[href], button, video[controls], input, select, textarea"));
  }

  // Poll `url` with backoff while `shouldContinue()` holds; pause while the tab is hidden.
  function poller(url, onHtml, shouldContinue) {
    var delay = 2000;
    var waiting = false;
    function schedule() { setTimeout(tick, delay); }
    function tick() {
      if (document.hidden) { waiting = true; return; }
      fetch(typeof url === "function" ? url() : url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
        .then(function (html) {
          onHtml(html);
          delay = 2000;
          if (shouldContinue()) schedule();
        })
        .catch(function () { delay = Math.min(delay * 2, 30000); schedule(); });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && waiting) { waiting = false; tick(); }
    });
    return schedule;
  }

  // ---- Generate form ----------------------------------------------------------------------
  // Narrow size and length to what the chosen model can make, show the estimated cost,
  // and make sure one click sends one request.
  function setUpGenerateForm(form) {
    var model = form.querySelector("select[name=model]");
    var size = form.querySelector("select[name=size]");
    var seconds = form.querySelector("select[name=seconds]");
    var prompt = form.querySelector("textarea[name=prompt]");
    var estimate = form.querySelector("[data-estimate]");
    var submit = form.querySelector("button[type=submit]");
    if (!model || !size || !seconds) return;
    var catalog = {};
    var prices = {};
    try { catalog = JSON.parse(model.getAttribute("data-catalog") || "{}"); } catch (e) { catalog = {}; }
    try { prices = JSON.parse(model.getAttribute("data-prices") || "{}"); } catch (e) { prices = {}; }

    // Cents per second from the price table: the silent row when sound is switched off and
    // the model has one, else the standard row.
    function centsPerSecond() {
      var bySize = prices[model.value] && prices[model.value][size.value];
      if (!bySize) return 0;
      var audio = form.querySelector("[name=audio]");
      var silent = audio && !audio.disabled &&
        (audio.type === "checkbox" ? !audio.checked : audio.value === "off");
      if (silent && bySize.silent !== undefined) return bySize.silent;
      return bySize[""] || 0;
    }

    function restrict(select, allowed) {
      var firstAllowed = null;
      Array.prototype.forEach.call(select.options, function (option) {
        var ok = allowed.indexOf(option.value) !== -1;
        option.disabled = !ok;
        option.hidden = !ok;
        if (ok && firstAllowed === null) firstAllowed = option.value;
      });
      if (select.selectedOptions.length && select.selectedOptions[0].disabled) select.value = firstAllowed;
    }

    function update() {
      var spec = catalog[model.value];
      if (!spec) return;
      restrict(size, spec.sizes);
      // Some models make only certain lengths at a given size (e.g. 8 s at 1080p).
      var lengths = (spec.seconds_by_size && spec.seconds_by_size[size.value]) || spec.seconds;
      restrict(seconds, lengths.map(String));
      // N takes are N videos, each reserved at the full price.
      var takesInput = form.querySelector("input[name=takes]");
      var takes = Math.max(1, Math.floor(Number(takesInput && takesInput.value) || 1));
      var cents = Math.round(centsPerSecond() * Number(seconds.value)) * takes;
      var each = takes > 1 ? " (" + takes + " takes)" : "";
      if (estimate) estimate.textContent = cents ? "About $" + (cents / 100).toFixed(2) + " at list price" + each : "";
    }

    // “Use this prompt again” links carry the request in the query string (with_* names: the
    // gallery's filters own model, status and the rest).
    function prefillFromUrl() {
      if (!prompt || !window.URLSearchParams) return;
      var params = new URLSearchParams(window.location.search);
      if (!params.has("prompt")) return;
      if (!prompt.value) prompt.value = params.get("prompt");
      [[model, "with_model"], [size, "with_size"], [seconds, "with_seconds"]].forEach(function (pair) {
        var value = params.get(pair[1]);
        if (value && Array.prototype.some.call(pair[0].options, function (o) { return o.value === value; })) {
          pair[0].value = value;
          if (pair[0] === model) update();
        }
      });
      if (window.history && history.replaceState) {
        history.replaceState(null, "", window.location.pathname + window.location.hash);
      }
      prompt.focus();
      prompt.setSelectionRange(prompt.value.length, prompt.value.length);
    }

    if (prompt && document.getElementById("prompt-help")) {
      var described = (prompt.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf("prompt-help") === -1) described.unshift("prompt-help");
      prompt.setAttribute("aria-describedby", described.join(" "));
    }

    var sending = false;
    var label = submit && submit.querySelector(".button-label");
    var idleText = label ? label.textContent : "";
    function reset() {
      sending = false;
      if (submit) { submit.removeAttribute("aria-disabled"); form.removeAttribute("aria-busy"); }
      if (label) label.textContent = idleText;
    }
    form.addEventListener("submit", function (event) {
      if (sending) { event.preventDefault(); return; }
      sending = true;
      form.setAttribute("aria-busy", "true");
      if (submit) submit.setAttribute("aria-disabled", "true");
      if (label) label.textContent = "Queuing…";
    });
    // Coming back with the browser's Back button restores the page as it was left.
    window.addEventListener("pageshow", function (event) { if (event.persisted) reset(); });

    if (prompt) {
      prompt.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          if (form.requestSubmit) form.requestSubmit(submit || undefined);
          else if (submit) submit.click();
        }
      });
    }

    [model, size, seconds].forEach(function (el) { el.addEventListener("change", update); });
    // Sound on/off and the takes count change the estimate too (generate.js shows those fields).
    form.addEventListener("change", function (event) {
      var name = event.target && event.target.name;
      if (name === "audio" || name === "takes") update();
    });
    form.addEventListener("input", function (event) {
      if (event.target && event.target.name === "takes") update();
    });
    update();
    prefillFromUrl();
  }

  // ---- Live gallery -----------------------------------------------------------------------
  // Every open project page asks the server once per interval what changed since its cursor,
  // whoever changed it: new cards from any member, progress, state changes. Only the cards
  // that changed are replaced, so a video someone is watching keeps playing; keyboard focus
  // stays where it was, and screen-reader users hear when a video changes state.
  var LIVE_INTERVAL = 3000;

  function setUpLive(container) {
    var base = container.getAttribute("data-live-url");
    var cursor = container.getAttribute("data-live-cursor") || "";
    // Only the first page of an unfiltered gallery takes new cards at its top.
    var insertNew = container.getAttribute("data-live-insert") === "1";
    var announce = announcer(document.querySelector("[data-gallery-announcer]"));
    var delay = LIVE_INTERVAL;
    var waiting = false;

    function list() {
      var ul = container.querySelector(".gallery");
      if (!ul && insertNew) {
        // The empty state gives way to the first card.
        container.innerHTML = "";
        ul = document.createElement("ul");
        ul.className = "gallery";
        container.appendChild(ul);
      }
      return ul;
    }

    function created(el) { return parseFloat(el.getAttribute("data-created")) || 0; }

    function insert(ul, card) {
      var when = created(card);
      var cards = ul.children;
      var last = cards.length ? cards[cards.length - 1] : null;
      // Older than everything shown: it belongs to a later page, not this one.
      if (last && when < created(last)) return false;
      for (var i = 0; i < cards.length; i++) {
        if (created(cards[i]) < when) { ul.insertBefore(card, cards[i]); return true; }
      }
      ul.appendChild(card);
      return true;
    }

    // The cards of recent answers and the version each came at: the server repeats the last
    // few seconds (a late commit is never missed) but does not send a card again at a version
    // the page holds. Forgotten once older than that window.
    var held = {};
    var HELD_SECONDS = 20;
    function remember(item) { if (item.version) held[item.id] = item.version; }
    function heldParam() {
      var floor = (parseFloat(cursor) - HELD_SECONDS) * 1e6;
      var pairs = [];
      Object.keys(held).forEach(function (id) {
        if (held[id] < floor) delete held[id];
        else pairs.push(id + ":" + held[id]);
      });
      return pairs.slice(-100).join(",");
    }

    function apply(answer) {
      var messages = [];
      var fresh = document.createElement("div");
      (answer.cards || []).forEach(remember);
      (answer.cards || []).forEach(function (item) {
        fresh.innerHTML = item.html;
        var card = fresh.firstElementChild;
        if (!card) return;
        var existing = document.getElementById(card.id);
        if (!existing) {
          if (!insertNew) return;
          var ul = list();
          if (ul && insert(ul, card)) {
            paintProgress(card);
            messages.push("New video: " + describe(card));
          }
        } else if (existing.getAttribute("data-state") !== card.getAttribute("data-state")) {
          var before = focusables(existing);
          var focused = before.indexOf(document.activeElement);
          var changed = statusOf(existing) !== statusOf(card);
          existing.replaceWith(card);
          paintProgress(card);
          if (focused !== -1) {
            var after = focusables(card);
            var target = after[Math.min(focused, after.length - 1)];
            if (target) target.focus({ preventScroll: true });
          }
          if (changed) messages.push(describe(card));
        }
      });
      (answer.moving || []).forEach(move);
      refreshTimes(container);
      if (messages.length) announce(messages.join(" "));
    }

    // An in-flight card whose row did not change: the server sends what moves on it (queue
    // position and its words, the progress clock), not its markup. A card that cannot take
    // the state as it is (a queue note appears or goes, or the card is not here yet) is asked
    // for whole in the next request.
    var rerender = {};
    var askedOnce = {};
    function move(state) {
      var card = document.getElementById("gen-" + state.id);
      if (!card) {
        if (insertNew && !askedOnce[state.id]) { askedOnce[state.id] = true; rerender[state.id] = true; }
        return;
      }
      var note = card.querySelector(".queue-standing");
      if (!note !== !state.standing) { rerender[state.id] = true; return; }
      if (note) {
        note.setAttribute("data-queue-position", String(state.position));
        var headline = note.querySelector("[data-standing-headline]");
        var detail = note.querySelector("[data-standing-detail]");
        if (headline && headline.textContent !== state.standing[0]) headline.textContent = state.standing[0];
        if (detail && detail.textContent !== state.standing[1]) detail.textContent = state.standing[1];
        var parts = (card.getAttribute("data-state") || "").split(":");
        parts[2] = String(state.position);
        card.setAttribute("data-state", parts.join(":"));
      }
      var bar = card.querySelector(".progress[role=progressbar]");
      if (bar && state.expected) {
        bar.setAttribute("data-progress-started", String(state.started));
        bar.setAttribute("data-progress-expected", String(state.expected));
      }
    }

    function tick() {
      if (document.hidden) { waiting = true; return; }
      var url = base + (base.indexOf("?") === -1 ? "?" : "&") + "since=" + encodeURIComponent(cursor);
      var again = Object.keys(rerender).slice(0, 100);
      if (again.length) url += "&render=" + again.join(",");
      var have = heldParam();
      if (have) url += "&have=" + have;
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (answer) {
          if (answer.cursor) cursor = answer.cursor;
          again.forEach(function (id) { delete rerender[id]; });
          apply(answer);
          delay = LIVE_INTERVAL;
          setTimeout(tick, delay);
        })
        .catch(function () { delay = Math.min(delay * 2, 30000); setTimeout(tick, delay); });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && waiting) { waiting = false; tick(); }
    });
    setTimeout(tick, delay);
  }

  // ---- Relative times ---------------------------------------------------------------------
  // "9 seconds ago" is true only when it is written: every <time data-relative> is rewritten
  // from its datetime, so an old card never reads newer than a card added live above it.
  var relativeFormat = window.Intl && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(document.documentElement.lang || "en", { numeric: "auto" })
    : null;
  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
               ["hour", 3600], ["minute", 60], ["second", 1]];

  function relative(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    if (Math.abs(seconds) < 5) return "now";
    for (var i = 0; i < UNITS.length; i++) {
      var size = UNITS[i][1];
      if (Math.abs(seconds) >= size || size === 1) {
        return relativeFormat.format(Math.round(seconds / size), UNITS[i][0]);
      }
    }
    return "";
  }

  function refreshTimes(root) {
    if (!relativeFormat) return;
    Array.prototype.forEach.call((root || document).querySelectorAll("time[data-relative]"), function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var words = relative(date);
      if (words && el.textContent !== words) el.textContent = words;
    });
  }

  // ---- Live status on a video's own page ----------------------------------------------------
  // Follows the generation through the live endpoint (narrowed to this one video, however old)
  // and reloads the page once it is final, so the player (or the explanation of the failure)
  // appears by itself.
  function setUpLiveDetail(panel) {
    var id = panel.getAttribute("data-live-generation");
    var base = panel.getAttribute("data-live-url");
    var cursor = panel.getAttribute("data-live-cursor") || "";
    var labelEl = panel.querySelector("[data-live-label]");
    var bar = panel.querySelector("[role=progressbar]");
    var fill = panel.querySelector(".progress-bar");
    var pct = panel.querySelector("[data-live-progress]");
    var note = panel.querySelector("[data-live-note]");
    var announce = announcer(panel.querySelector("[data-live-announcer]"));
    var keepGoing = true;
    var url = function () { return base + "&since=" + encodeURIComponent(cursor); };
    if (note) note.textContent = "This page updates by itself and shows the video as soon as it is ready.";
    function apply(body) {
      var answer = JSON.parse(body);
      if (answer.cursor) cursor = answer.cursor;
      // Unchanged since the last answer, or only its clock moved (in "moving"): nothing to redo.
      var item = (answer.cards || []).filter(function (c) { return c.id === id; })[0];
      if (!item) return;
      var fresh = document.createElement("div");
      fresh.innerHTML = item.html;
      var card = fresh.firstElementChild;
      var parts = (card.getAttribute("data-state") || "").split(":");
      var status = parts[0];
      var progress = parts[1] || "0";
      if (ACTIVE.indexOf(status) === -1) { keepGoing = false; window.location.reload(); return; }
      var label = text(card.querySelector("[data-status-label]"));
      if (labelEl && label && text(labelEl) !== label) { labelEl.textContent = label; announce(label); }
      if (bar) {
        bar.setAttribute("aria-valuenow", progress);
        bar.setAttribute("aria-valuetext", progress + "% · " + label);
      }
      if (fill) { fill.setAttribute("data-progress", progress); paintProgress(panel); }
      if (pct) pct.textContent = progress;
    }
    poller(url, apply, function () { return keepGoing; })();
  }

  // ---- Progress bars ------------------------------------------------------------------------
  // Bars carry their value in data-progress and get their width here: the Content-Security-
  // Policy allows no style attributes in the markup, but script may set element.style.
  function paintProgress(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-progress]"), function (el) {
      var value = parseFloat(el.getAttribute("data-progress"));
      if (isNaN(value)) value = 0;
      var first = !el.style.width;
      // A bar's first width is where it stands, not a change: no grow animation on load.
      if (first) el.style.transition = "none";
      el.style.width = Math.max(0, Math.min(100, value)) + "%";
      if (first) { void el.offsetWidth; el.style.transition = ""; }
    });
  }

  // ---- Smooth progress between checks -------------------------------------------------------
  // The server gives when a render started and how long such renders take; the bar moves with
  // the clock in between and stops at 99 %: only a stored video shows 100 % (a new card).
  function tickProgress() {
    var now = Date.now() / 1000;
    Array.prototype.forEach.call(document.querySelectorAll("[data-progress-expected]"), function (bar) {
      var started = parseFloat(bar.getAttribute("data-progress-started"));
      var expected = parseFloat(bar.getAttribute("data-progress-expected"));
      var floor = parseFloat(bar.getAttribute("data-progress-floor")) || 0;
      if (!(expected > 0) || !(started > 0)) return;
      var pct = Math.floor(Math.min(99, Math.max(floor, 100 * (now - started) / expected)));
      var card = bar.closest(".gen-card") || document;
      var fill = bar.querySelector(".progress-bar");
      if (fill) { fill.setAttribute("data-progress", pct); fill.style.width = pct + "%"; }
      bar.setAttribute("aria-valuenow", String(pct));
      Array.prototype.forEach.call(card.querySelectorAll("[data-progress-text]"), function (el) { el.textContent = pct; });
    });
  }

  // ---- Gallery search -----------------------------------------------------------------------
  // Empty filters stay out of the URL, so a shared search reads "?q=kite&member=tariq".
  function setUpFilters(form) {
    var fields = function () { return form.querySelectorAll("input, select"); };
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(fields(), function (el) { if (el.name && !el.value) el.disabled = true; });
    });
    window.addEventListener("pageshow", function () {
      Array.prototype.forEach.call(fields(), function (el) { el.disabled = false; });
    });
  }

  // ---- Small helpers ----------------------------------------------------------------------
  function setUpConfirm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    paintProgress(document);
    Array.prototype.forEach.call(document.querySelectorAll("[data-js-only]"), function (el) { el.hidden = false; });
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), setUpConfirm);
    // After a form comes back with errors, start where the first problem is.
    var invalid = document.querySelector("form [aria-invalid=true]");
    if (invalid && !document.querySelector("[autofocus]")) invalid.focus();
    var form = document.querySelector("[data-generate-form]");
    if (form) setUpGenerateForm(form);
    var filters = document.querySelector("form.gallery-filters");
    if (filters) setUpFilters(filters);
    var gallery = document.getElementById("gallery");
    if (gallery && gallery.getAttribute("data-live-url")) setUpLive(gallery);
    refreshTimes(document);
    setInterval(function () { refreshTimes(document); }, 15000);
    if (document.querySelector("[data-progress-expected]") || gallery) setInterval(tickProgress, 500);
    var live = document.querySelector("[data-live-generation]");
    if (live) setUpLiveDetail(live);
  });
})();
