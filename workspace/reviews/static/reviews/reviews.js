// Reviews: timecodes that seek the player, "use the player's time", stars toggled in place.
// Progressive enhancement only: without this file timecodes open the video at that time and
// the star forms post and come back.
(function () {
  "use strict";

  function player() { return document.querySelector("video.player"); }

  function formatTime(seconds) {
    var whole = Math.floor(seconds);
    var tenths = Math.floor((seconds - whole) * 10);
    var s = whole % 60;
    return Math.floor(whole / 60) + ":" + (s < 10 ? "0" : "") + s + (tenths ? "." + tenths : "");
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-seek-ms]");
    if (!link) return;
    var video = player();
    if (!video) return; // no inline player (not ready, or the file is gone): follow the link
    event.preventDefault();
    var seconds = parseInt(link.getAttribute("data-seek-ms"), 10) / 1000;
    if (!isFinite(seconds)) return;
    var seek = function () { video.currentTime = seconds; };
    // Before its metadata is loaded a video cannot seek; do it as soon as it can.
    if (video.readyState >= 1) seek(); else { video.addEventListener("loadedmetadata", seek, { once: true }); video.load(); }
    video.pause();
    video.scrollIntoView({ block: "nearest" });
    video.focus({ preventScroll: true });
  });

  function setUpCommentForm(form) {
    var button = form.querySelector("[data-use-player-time]");
    var field = form.querySelector("input[name=at]");
    var video = player();
    if (!button || !field || !video) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      field.value = formatTime(video.currentTime || 0);
      field.focus();
    });
  }

  // Stars: one POST, the button flips from the answer (the server's word, not a guess).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-favourite-form]")) return;
    event.preventDefault();
    var button = form.querySelector("[data-favourite]");
    if (button.disabled) return;
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin"
    })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (answer) {
        button.setAttribute("aria-pressed", answer.favourite ? "true" : "false");
        var mark = button.querySelector(".star-mark");
        if (mark) mark.textContent = answer.favourite ? "★" : "☆";
      })
      .catch(function () { form.submit(); }) // let the plain form say what went wrong
      .then(function () { button.disabled = false; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-comment-form]"), setUpCommentForm);
  });
})();
