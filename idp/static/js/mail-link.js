// Links of our mails carry their secret in the URL fragment (#...), which browsers never send to a server,
// so that no access log, proxy or Referer ever holds a live link. This script hands it to the server in the
// body of a POST: it copies the fragment into the form's hidden field, takes it out of the address bar
// (history, bookmarks), and sends a form marked data-auto-submit (opening a link consumes nothing: only the
// person's own later POST does).
(function () {
  "use strict";
  var secret = window.location.hash.replace(/^#/, "");
  var form = document.querySelector("form[data-mail-link]");
  if (!form) { return; }
  if (secret && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  var field = form.querySelector("input[name='token']");
  if (!field || !secret) { return; }
  field.value = decodeURIComponent(secret);
  if (form.hasAttribute("data-auto-submit")) { form.submit(); }
})();
