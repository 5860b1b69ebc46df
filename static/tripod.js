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
