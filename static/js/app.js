// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Narrow size and length to what the chosen model can make, and show the estimated cost.
  function setUpGenerateForm(form) {
    var model = form.querySelector("select[name=model]");
    var size = form.querySelector("select[name=size]");
    var seconds = form.querySelector("select[name=seconds]");
    var estimate = form.querySelector("[data-estimate]");
    if (!model || !size || !seconds) return;
    var catalog = JSON.parse(model.getAttribute("data-catalog") || "{}");

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
      restrict(seconds, spec.seconds.map(String));
      var cents = (spec.cents_per_second[size.value] || 0) * Number(seconds.value);
      if (estimate) estimate.textContent = cents ? "About $" + (cents / 100).toFixed(2) + " at list price" : "";
    }
    [model, size, seconds].forEach(function (el) { el.addEventListener("change", update); });
    update();
  }

  // Keep the gallery live while anything is in flight, replacing only the cards that changed
  // so a video someone is watching keeps playing.
  function setUpGallery(container) {
    var url = container.getAttribute("data-gallery-url");
    var delay = 2000;
    function hasActive(root) {
      var list = root.querySelector(".gallery");
      return !!(list && list.getAttribute("data-active"));
    }
    function refresh() {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var fresh = document.createElement("div");
          fresh.innerHTML = html;
          var oldList = container.querySelector(".gallery");
          var newList = fresh.querySelector(".gallery");
          if (!oldList || !newList) { container.innerHTML = html; }
          else {
            var incoming = Array.prototype.slice.call(newList.children);
            incoming.forEach(function (card, index) {
              var existing = document.getElementById(card.id);
              if (!existing) { oldList.insertBefore(card, oldList.children[index] || null); }
              else if (existing.getAttribute("data-state") !== card.getAttribute("data-state")) {
                existing.replaceWith(card);
              }
            });
            oldList.setAttribute("data-active", newList.getAttribute("data-active") || "");
          }
          delay = 2000;
          if (hasActive(container)) setTimeout(refresh, delay);
        })
        .catch(function () { delay = Math.min(delay * 2, 30000); setTimeout(refresh, delay); });
    }
    if (hasActive(container)) setTimeout(refresh, delay);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-generate-form]");
    if (form) setUpGenerateForm(form);
    var gallery = document.getElementById("gallery");
    if (gallery) setUpGallery(gallery);
  });
})();
