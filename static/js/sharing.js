// The selection bar on a project page: counts the ticked cards (live updates add cards, so the
// listener is delegated), names the count on its buttons and refuses past the bound.
(function () {
  "use strict";
  var bar = document.querySelector("[data-selection-bar]");
  if (!bar) return;
  var max = parseInt(bar.getAttribute("data-max"), 10) || 50;
  var count = bar.querySelector("[data-selection-count]");
  var zip = bar.querySelector("[data-selection-zip]");
  var share = bar.querySelector("[data-selection-share]");
  var limit = bar.querySelector("[data-selection-limit]");
  var clear = bar.querySelector("[data-selection-clear]");

  function boxes() {
    return document.querySelectorAll("input[data-select-video]");
  }

  function update() {
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    bar.hidden = n === 0;
    count.textContent = n === 1 ? "1 video selected" : n + " videos selected";
    zip.textContent = "Download " + n + " as zip";
    if (share) share.textContent = "Share " + n;
    var over = n > max;
    limit.hidden = !over;
    zip.disabled = over;
    if (share) share.disabled = over;
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.matches && event.target.matches("input[data-select-video]")) update();
  });
  clear.addEventListener("click", function () {
    boxes().forEach(function (box) { box.checked = false; });
    update();
  });
  // The gallery may be replaced by live updates and paging: recount when it changes.
  var gallery = document.getElementById("gallery");
  if (gallery && window.MutationObserver) {
    new MutationObserver(update).observe(gallery, { childList: true, subtree: true });
  }
  update();
})();
