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
