// Behaviour that pages declare with data attributes, so that no page needs an inline script or
// event handler (the Content-Security-Policy allows only this host's script files).
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option submits the select's form (tenant, language, filters).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.submit();
    }
  });
  // <form data-confirm="question">: asks before submitting, and submits only on OK.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // The menu on a phone: folded under its button, which opens and closes it (Enter or Space, as any
  // button). Wider screens show the menu beside the page and hide the button (static/tripod.css).
  var toggle = document.querySelector(".tp-nav-toggle");
  if (toggle) {
    toggle.hidden = false;
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", function () {
      toggle.setAttribute("aria-expanded", toggle.getAttribute("aria-expanded") === "true" ? "false" : "true");
    });
  }
  // Wide tables scroll sideways inside their own box, never the page: each table of the page sits in
  // a .tp-scroll box; a box whose table is wider than it becomes a region the keyboard can focus
  // (then scroll with the arrow keys), named after the table's caption or the heading above it.
  var SCROLLERS = ".tp-scroll, .tp-explorer, #change-preview";
  function tableName(box) {
    var table = box.querySelector("table");
    var caption = table && table.querySelector("caption");
    if (caption && caption.textContent.trim()) { return caption.textContent.trim(); }
    var node = box;
    while (node && node !== document.body) {
      var previous = node.previousElementSibling;
      while (previous) {
        var heading = /^H[1-6]$/.test(previous.tagName) ? previous : previous.querySelector("h1, h2, h3, h4, h5, h6");
        if (heading && heading.textContent.trim()) { return heading.textContent.trim(); }
        previous = previous.previousElementSibling;
      }
      node = node.parentElement;
    }
    return document.title.split(" · ")[0];
  }
  function fitTables() {
    var main = document.querySelector(".tp-main");
    if (!main) { return; }
    main.querySelectorAll("table").forEach(function (table) {
      if (table.closest(SCROLLERS)) { return; }
      var box = document.createElement("div");
      box.className = "tp-scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
    main.querySelectorAll(SCROLLERS).forEach(function (box) {
      var wide = box.scrollWidth > box.clientWidth + 1;
      if (wide && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-tp-scrolls", "");
        box.setAttribute("role", "region");
        if (!box.hasAttribute("aria-label")) { box.setAttribute("aria-label", tableName(box)); }
      } else if (!wide && box.hasAttribute("data-tp-scrolls")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-tp-scrolls");
        box.removeAttribute("role");
      }
    });
  }
  fitTables();
  var resizing = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(fitTables, 100);
  });
  // htmx swaps rows and panels in: their tables too
  document.addEventListener("htmx:load", fitTables);
})();
// "/" focuses the back-office search box (#global-search), unless the key is typed into a field.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) {
      return;
    }
    var target = event.target;
    if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    var box = document.getElementById("global-search");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
})();
// <input type="checkbox" data-check-all="name" hidden>: shown once this script runs, it ticks or
// unticks every checkbox named "name" of its form (the rows of a page, for a bulk action).
(function () {
  function show(root) {
    root.querySelectorAll("input[data-check-all]").forEach(function (box) { box.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", function () { show(document); });
  document.addEventListener("htmx:afterSwap", function (event) { show(event.target); });
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.checkAll || !box.form) { return; }
    box.form.querySelectorAll('input[type="checkbox"][name="' + box.dataset.checkAll + '"]').forEach(function (row) {
      row.checked = box.checked;
    });
  });
})();
// Saved filters: a list filtered through HTMX shows its filter in the address bar only, so the
// forms of the saved-filters bar send that one (<input data-current-query>).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement)) { return; }
  form.querySelectorAll("input[data-current-query]").forEach(function (input) {
    input.value = window.location.search.replace(/^\?/, "");
  });
});
// <a data-csv-form="form-id" href="…csv">: a "Download CSV" link follows its list's filter as it
// stands when clicked (HTMX may have changed it since the page loaded), not as the page was served.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a[data-csv-form]") : null;
    var form = link ? document.getElementById(link.getAttribute("data-csv-form")) : null;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string" && value !== "") {
        params.append(key, value);
      }
    });
    var query = params.toString();
    link.setAttribute("href", link.getAttribute("href").split("?")[0] + (query ? "?" + query : ""));
  });
  // [data-error-summary]: a form came back with errors; the summary, whose links lead to each
  // field, takes the focus so that a keyboard or screen-reader user starts from it.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      summary.scrollIntoView({block: "start"});
      summary.focus({preventScroll: true});
    }
  });
})();
