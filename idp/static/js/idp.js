// Progressive enhancement only: every page works without this file.
// RGAA: focus lands on the first error so that it is read out and can be fixed.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-focus-first]");
  if (summary) {
    var firstInvalid = document.querySelector("[aria-invalid='true']");
    (firstInvalid || summary).focus();
  }
});

// « Afficher le mot de passe » (the login page): the same control as the new-password page's,
// shown only when this script runs; it switches the form's password fields to plain text and back.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-reveal-password]").forEach(function (toggle) {
    var form = toggle.closest("form");
    var fields = form.querySelectorAll("input[type='password']");
    toggle.hidden = false;
    toggle.querySelector("input").addEventListener("change", function (e) {
      fields.forEach(function (field) { field.type = e.target.checked ? "text" : "password"; });
    });
  });
});
