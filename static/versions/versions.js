// Version stacks: the extend form's live length and price, one gallery card per stack while
// live updates arrive, and Alt+↑/↓ through the versions on a video's page.
(function () {
  "use strict";

  function setUpExtend(form) {
    var select = form.querySelector("[data-extend-seconds]");
    if (!select) return;
    var total = form.querySelector("[data-extend-total]");
    var added = form.querySelector("[data-extend-added]");
    var price = form.querySelector("[data-extend-price]");
    function show() {
      var option = select.options[select.selectedIndex];
      if (!option) return;
      total.textContent = option.getAttribute("data-total");
      added.textContent = option.value;
      price.textContent = option.getAttribute("data-price");
    }
    select.addEventListener("change", show);
    show();
  }

  // The live endpoint sends only stack heads; when a new head arrives (an edit, an extension,
  // a pick), the card of the stack's previous head leaves, so the stack stays one card.
  function setUpOneCardPerStack(gallery) {
    function stackOf(card) {
      var marker = card.querySelector("[data-stack]");
      return marker ? marker.getAttribute("data-stack") : null;
    }
    var observer = new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1 || !node.classList.contains("gen-card")) return;
          var stack = stackOf(node);
          if (!stack) return;
          gallery.querySelectorAll(".gen-card").forEach(function (card) {
            if (card !== node && stackOf(card) === stack) card.remove();
          });
        });
      });
    });
    observer.observe(gallery, { childList: true, subtree: true });
  }

  function setUpStackKeys() {
    var prev = document.querySelector("[data-stack-prev]");
    var next = document.querySelector("[data-stack-next]");
    if (!prev && !next) return;
    document.addEventListener("keydown", function (event) {
      if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      var target = event.target;
      if (target && target.closest && target.closest("input, textarea, select, video, [contenteditable]")) return;
      var link = event.key === "ArrowUp" ? prev : event.key === "ArrowDown" ? next : null;
      if (!link) return;
      event.preventDefault();
      window.location.assign(link.href);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-extend-form]").forEach(setUpExtend);
    var gallery = document.getElementById("gallery");
    if (gallery) setUpOneCardPerStack(gallery);
    setUpStackKeys();
  });
})();
