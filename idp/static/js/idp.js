// Progressive enhancement only: every page works without this file.
// RGAA: focus lands on the first error so that it is read out and can be fixed.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-focus-first]");
  if (summary) {
    var firstInvalid = document.querySelector("[aria-invalid='true']");
    (firstInvalid || summary).focus();
  }
});
