// Ferry console: progressive enhancements only; every page works without this file.
"use strict";
(function () {
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // The instance picker navigates when a new instance is chosen.
  $all("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });

  // The rule name is checked as it is typed, against the pattern the server enforces.
  $all("input[data-live]").forEach(function (input) {
    var note = document.createElement("p");
    note.className = "error live hidden";
    note.setAttribute("data-field", input.name);
    input.parentNode.appendChild(note);
    function check() {
      var bad = input.value !== "" && !input.checkValidity();
      note.textContent = bad ? input.getAttribute("data-live") : "";
      note.classList.toggle("hidden", !bad);
    }
    input.addEventListener("input", check);
  });

  // The cross-tenant switch shows either the own-instance choice or the other account's fields.
  $all("input[data-toggle=cross]").forEach(function (box) {
    function apply() {
      $all("[data-when=cross]").forEach(function (el) { el.classList.toggle("hidden", !box.checked); });
      $all("[data-when=same]").forEach(function (el) { el.classList.toggle("hidden", box.checked); });
    }
    box.addEventListener("change", apply);
    apply();
  });

  // Preview lists the first matches below the form instead of leaving the page.
  var preview = $("#preview[data-preview]");
  if (preview) {
    preview.addEventListener("click", function (ev) {
      ev.preventDefault();
      var out = $("#preview-result");
      out.innerHTML = "<p class='muted'>Listing the source…</p>";
      fetch(preview.getAttribute("data-preview"), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) { out.innerHTML = html; out.scrollIntoView({ behavior: "smooth" }); })
        .catch(function () { out.innerHTML = "<p class='flash error'>The preview failed; try again.</p>"; });
    });
  }

  // Running tasks: poll the JSON of the page and update the status, bar and figures.
  var WORDS = { InProgress: "In progress", PartiallySucceeded: "Partly succeeded" };
  function render(row, t) {
    var status = $("[data-k=status]", row);
    if (status) {
      status.innerHTML = "";
      var badge = document.createElement("span");
      badge.className = "badge s-" + t.status.toLowerCase();
      badge.setAttribute("data-status", t.status);
      badge.textContent = WORDS[t.status] || t.status;
      status.appendChild(badge);
    }
    ["time_spent", "success_rate", "repositories_count", "bytes"].forEach(function (k) {
      var cell = $("[data-k=" + k + "]", row);
      if (cell) { cell.textContent = t[k]; }
    });
    var bar = $(".progress", row);
    if (bar) {
      var fill = $(".fill", bar);
      fill.style.width = t.percent + "%";
      fill.className = "fill s-" + t.status.toLowerCase();
      $(".label", bar).textContent = t.done + "/" + t.total + " · " + t.percent + "%";
      bar.setAttribute("aria-valuenow", t.percent);
      bar.classList.toggle("running", t.open);
    }
  }
  $all("[data-poll]").forEach(function (root) {
    var url = root.getAttribute("data-poll");
    function tick() {
      if (!$(".progress.running", root.closest("main") || document)) { return; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          body.tasks.forEach(function (t) {
            var row = root.getAttribute("data-task") === t.task_id ? root : $("tr[data-task='" + t.task_id + "']", root);
            if (row) { render(row, t); }
          });
          setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    setTimeout(tick, 1000);
  });
})();
