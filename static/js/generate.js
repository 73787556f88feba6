// The generate form's inputs: fields follow the chosen model's capabilities, the first frame is
// previewed exactly as the server will fit it (workspace/generations/images.py), and a frame of
// a project video is picked on a small player. Progressive enhancement: without this file every
// field is shown and the server checks everything.
(function () {
  "use strict";

  // The same limits and rule as images.py.
  var MAX_ASPECT_MISMATCH = 4;
  var BLUR_SHARE = 1 / 40;
  var PREVIEW_WIDTH = 320;

  function parseSize(value) {
    var parts = String(value || "").split("x");
    return { w: Number(parts[0]) || 0, h: Number(parts[1]) || 0 };
  }

  // The centred part of the source with the frame's shape (images.crop_box).
  function cropBox(w, h, tw, th) {
    if (w / h > tw / th) {
      var keptW = h * tw / th;
      return { x: (w - keptW) / 2, y: 0, w: keptW, h: h };
    }
    var keptH = w * th / tw;
    return { x: 0, y: (h - keptH) / 2, w: w, h: keptH };
  }

  // Where the whole source sits inside the frame (images.pad_box).
  function padBox(w, h, tw, th) {
    var scale = Math.min(tw / w, th / h);
    var iw = Math.max(1, Math.min(tw, Math.round(w * scale)));
    var ih = Math.max(1, Math.min(th, Math.round(h * scale)));
    return { x: Math.floor((tw - iw) / 2), y: Math.floor((th - ih) / 2), w: iw, h: ih };
  }

  function mismatch(w, h, tw, th) {
    var ratio = (w / h) / (tw / th);
    return Math.max(ratio, 1 / ratio);
  }

  function setUp(form) {
    var model = form.querySelector("select[name=model]");
    var size = form.querySelector("select[name=size]");
    if (!model || !size) return;
    var catalog = {};
    try { catalog = JSON.parse(model.getAttribute("data-catalog") || "{}"); } catch (e) { catalog = {}; }
    var maxBytes = Number(form.getAttribute("data-max-image-bytes")) || 0;
    var startRadios = form.querySelectorAll("input[name=start]");
    var firstInput = form.querySelector("input[name=first_frame]");
    var firstKept = form.querySelector("input[name=first_frame_kept]");
    var fitSelect = form.querySelector("select[name=fit]");
    var fitBlock = form.querySelector("[data-fit-block]");
    var figure = form.querySelector("[data-fit-figure]");
    var canvas = form.querySelector("[data-fit-preview]");
    var caption = form.querySelector("[data-fit-caption]");
    var videoSelect = form.querySelector("select[name=frame_video]");
    var player = form.querySelector("[data-frame-player]");
    var frameAt = form.querySelector("input[name=frame_at]");
    var useFrame = form.querySelector("[data-use-frame]");
    var sources = {};
    if (videoSelect) {
      try { sources = JSON.parse(videoSelect.getAttribute("data-sources") || "{}"); } catch (e) { sources = {}; }
    }
    // What the preview draws: an ImageBitmap/HTMLImageElement or the player at its frame.
    var source = null;
    var sourceName = "";

    function start() {
      var checked = form.querySelector("input[name=start]:checked");
      return checked ? checked.value : "text";
    }

    function capabilities() {
      var spec = catalog[model.value];
      return (spec && spec.capabilities) || {};
    }

    // A field the model does not take is hidden and disabled, so it is not sent either.
    function toggle(el, on) {
      el.hidden = !on;
      Array.prototype.forEach.call(el.querySelectorAll("input, select, textarea, button"), function (input) {
        input.disabled = !on;
      });
    }

    function applyCapabilities() {
      var caps = capabilities();
      Array.prototype.forEach.call(form.querySelectorAll("[data-cap]"), function (el) {
        var cap = el.getAttribute("data-cap");
        var value = caps[cap];
        toggle(el, typeof value === "number" ? value > 0 : Boolean(value));
      });
      var refs = form.querySelector("input[name=references]");
      if (refs && caps.reference_images) {
        var label = form.querySelector("label[for=" + refs.id + "]");
        if (label) label.textContent = "Reference images (up to " + caps.reference_images + ")";
      }
      if (!caps.first_frame && start() !== "text") {
        var text = form.querySelector("input[name=start][value=text]");
        if (text) text.checked = true;
      }
      applyStart();
    }

    function applyStart() {
      var caps = capabilities();
      var chosen = start();
      Array.prototype.forEach.call(form.querySelectorAll("[data-start-panel]"), function (panel) {
        toggle(panel, Boolean(caps.first_frame) && panel.getAttribute("data-start-panel") === chosen);
      });
      if (fitBlock) fitBlock.hidden = chosen === "text" || !caps.first_frame;
      if (chosen === "frame") pickVideo(); else if (chosen === "image") loadUpload(); else draw();
    }

    function fieldError(input, message) {
      var field = input.closest(".field");
      if (!field) return;
      var box = field.querySelector(".field-error[data-client]");
      if (!message) { if (box) box.remove(); field.classList.remove("has-error"); return; }
      if (!box) {
        box = document.createElement("div");
        box.className = "field-error";
        box.setAttribute("data-client", "");
        box.setAttribute("role", "alert");
        field.appendChild(box);
      }
      box.textContent = message;
      field.classList.add("has-error");
    }

    // Too large for the server is refused here, before minutes of uploading.
    function checkFiles(input) {
      var tooBig = Array.prototype.filter.call(input.files || [], function (f) { return maxBytes && f.size > maxBytes; });
      if (tooBig.length) {
        var f = tooBig[0];
        fieldError(input, f.name + " is " + (f.size / 1048576).toFixed(1) + " MB; the limit is " + Math.round(maxBytes / 1048576) + " MB.");
        input.value = "";
        return false;
      }
      fieldError(input, "");
      return true;
    }

    function loadUpload() {
      var file = firstInput && firstInput.files && firstInput.files[0];
      if (file && window.createImageBitmap) {
        // createImageBitmap decodes without a blob: URL, which the page's CSP does not allow.
        createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
          source = bitmap;
          sourceName = file.name;
          draw();
        }, function () {
          source = null;
          fieldError(firstInput, file.name + " is not an image this browser can read; the server will say why.");
          draw();
        });
        return;
      }
      var keptImg = form.querySelector(".field-first_frame [data-kept-img]");
      if (keptImg && firstKept && firstKept.value) {
        var full = new Image();
        full.onload = function () { source = full; sourceName = "the kept image"; draw(); };
        full.src = keptImg.src;
        return;
      }
      source = null;
      draw();
    }

    function pickVideo() {
      if (!videoSelect || !player) { source = null; draw(); return; }
      var chosen = sources[videoSelect.value];
      if (!chosen) { player.hidden = true; source = null; draw(); return; }
      if (player.getAttribute("data-src") !== chosen.src) {
        player.setAttribute("data-src", chosen.src);
        player.src = chosen.src;
        if (frameAt) frameAt.max = String(chosen.seconds);
      }
      player.hidden = false;
      source = player;
      sourceName = "the frame at " + (player.currentTime || 0).toFixed(1) + " s";
      draw();
    }

    function sourceSize() {
      if (!source) return null;
      if (source === player) return player.videoWidth ? { w: player.videoWidth, h: player.videoHeight } : null;
      var w = source.naturalWidth || source.width;
      var h = source.naturalHeight || source.height;
      return w && h ? { w: w, h: h } : null;
    }

    function draw() {
      if (!canvas || !figure) return;
      var target = parseSize(size.value);
      var src = sourceSize();
      if (!src || !target.w || start() === "text" || !capabilities().first_frame) { figure.hidden = true; return; }
      figure.hidden = false;
      var k = Math.min(1, PREVIEW_WIDTH / target.w);
      canvas.width = Math.round(target.w * k);
      canvas.height = Math.round(target.h * k);
      var ctx = canvas.getContext("2d");
      var fit = fitSelect ? fitSelect.value : "crop";
      ctx.filter = "none";
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      var off = mismatch(src.w, src.h, target.w, target.h);
      if (off > MAX_ASPECT_MISMATCH) {
        caption.textContent = "This image is " + off.toFixed(1) + " times " +
          (src.w / src.h > target.w / target.h ? "wider" : "taller") +
          " than the frame (at most " + MAX_ASPECT_MISMATCH + "): it will be refused. Choose another shape or image.";
        return;
      }
      var crop = cropBox(src.w, src.h, target.w, target.h);
      if (src.w === target.w && src.h === target.h) {
        ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
        caption.textContent = "Sent as it is: already " + target.w + "x" + target.h + ".";
        return;
      }
      if (fit === "crop") {
        ctx.drawImage(source, crop.x, crop.y, crop.w, crop.h, 0, 0, canvas.width, canvas.height);
        caption.textContent = "Cropped to fill " + target.w + "x" + target.h + ": the edges outside the frame are cut equally.";
        return;
      }
      if (fit === "blur") {
        ctx.filter = "blur(" + Math.max(target.w, target.h) * BLUR_SHARE * k + "px)";
        ctx.drawImage(source, crop.x, crop.y, crop.w, crop.h, 0, 0, canvas.width, canvas.height);
        ctx.filter = "none";
      }
      var pad = padBox(src.w, src.h, target.w, target.h);
      ctx.drawImage(source, 0, 0, src.w, src.h, pad.x * k, pad.y * k, pad.w * k, pad.h * k);
      caption.textContent = "Padded to " + target.w + "x" + target.h + " with " + (fit === "blur" ? "blurred" : "black") + " bars: the whole image is kept.";
    }

    Array.prototype.forEach.call(startRadios, function (radio) { radio.addEventListener("change", applyStart); });
    model.addEventListener("change", applyCapabilities);
    size.addEventListener("change", draw);
    if (fitSelect) fitSelect.addEventListener("change", draw);
    if (firstInput) firstInput.addEventListener("change", function () {
      if (checkFiles(firstInput)) loadUpload(); else { source = null; draw(); }
    });
    Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (input) {
      if (input !== firstInput) input.addEventListener("change", function () { checkFiles(input); });
    });
    // A kept draft can be dropped; a new upload replaces it anyway.
    Array.prototype.forEach.call(form.querySelectorAll("[data-kept-remove]"), function (button) {
      button.addEventListener("click", function () {
        var item = button.closest("[data-kept]");
        var hidden = form.querySelector("input[name=" + button.getAttribute("data-kept-remove") + "]");
        if (hidden && item) {
          var token = item.getAttribute("data-kept");
          hidden.value = hidden.value.split(" ").filter(function (t) { return t && t !== token; }).join(" ");
        }
        if (item) item.remove();
        if (start() === "image") loadUpload();
      });
    });
    if (videoSelect) videoSelect.addEventListener("change", pickVideo);
    if (player) {
      player.addEventListener("loadeddata", function () {
        if (frameAt && frameAt.value) player.currentTime = Number(frameAt.value);
        draw();
      });
      player.addEventListener("seeked", draw);
      player.addEventListener("timeupdate", function () { if (player.paused) draw(); });
    }
    if (useFrame && player) {
      useFrame.addEventListener("click", function () {
        player.pause();
        if (frameAt) frameAt.value = player.currentTime.toFixed(1);
        fieldError(frameAt, "");
        draw();
        if (caption) caption.textContent = "Frame at " + player.currentTime.toFixed(1) + " s. " + caption.textContent;
      });
    }
    if (frameAt && player) {
      frameAt.addEventListener("change", function () {
        var at = Number(frameAt.value);
        if (!isNaN(at) && player.readyState >= 1) player.currentTime = Math.min(at, player.duration || at);
      });
    }
    applyCapabilities();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-generate-form]");
    if (form) setUp(form);
  });
})();
