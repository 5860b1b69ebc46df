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
})();
