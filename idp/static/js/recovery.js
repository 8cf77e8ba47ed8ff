// Forgotten-password pages: progressive enhancement only, every page works without this file.
// 1. CAPTCHA: « Écouter les caractères » plays the sound in the page (without script, the link opens the WAV file).
// 2. New password: the rules are marked met or unmet while typing, in words and not only in colour; the NIR and
//    birth-date rules are asked of the server (the page does not know them). The server checks everything again.
(function () {
  "use strict";

  function setupAudio() {
    var link = document.querySelector("a[data-captcha-audio]");
    if (!link || typeof Audio === "undefined") { return; }
    var status = document.querySelector("[data-captcha-status]");
    var button = document.createElement("button");
    button.type = "button";
    button.className = link.className;
    Array.prototype.forEach.call(link.childNodes, function (node) {  // the icon and the words, not « (fichier audio) »
      if (!(node.classList && node.classList.contains("visually-hidden"))) { button.appendChild(node.cloneNode(true)); }
    });
    link.parentNode.replaceChild(button, link);
    var audio = null;
    button.addEventListener("click", function () {
      if (audio) { audio.pause(); }
      audio = new Audio(link.href);
      if (status) { status.textContent = "Lecture des caractères en cours…"; }
      audio.addEventListener("ended", function () {
        if (status) { status.textContent = "Lecture terminée. Vous pouvez l'écouter de nouveau."; }
      });
      var played = audio.play();
      if (played && played.catch) {
        played.catch(function () {
          if (status) { status.textContent = "Le son ne peut pas être lu ici : demandez une nouvelle série de caractères."; }
        });
      }
    });
  }

  function setupPasswordRules() {
    var form = document.querySelector("form[data-password-form]");
    if (!form) { return; }
    var input = form.querySelector("input[name='password']");
    var confirm = form.querySelector("input[name='confirm']");
    var list = form.querySelector("[data-password-rules]");
    var summary = form.querySelector("[data-rules-summary]");
    var confirmState = form.querySelector("[data-confirm-state]");
    var min = parseInt(form.getAttribute("data-min-length"), 10);
    var max = parseInt(form.getAttribute("data-max-length"), 10);
    var specials = form.getAttribute("data-specials") || "";
    var checkUrl = form.getAttribute("data-check-url");
    var csrf = form.querySelector("input[name='csrf_token']");
    var serverBroken = {};  // rules only the server can check: NIR and birth date
    var serverRules = ["password_rule_nir", "password_rule_birth_date"];
    var serverDown = false;
    var timer = null;
    var sequence = 0;

    function isLower(c) { return c >= "a" && c <= "z"; }
    function isUpper(c) { return c >= "A" && c <= "Z"; }
    function isDigit(c) { return c >= "0" && c <= "9"; }
    function isSpecial(c) { return specials.indexOf(c) !== -1; }

    function localRules(p) {
      var chars = Array.from(p);
      return {
        password_rule_length: chars.length >= min && chars.length <= max,
        password_rule_case: chars.some(isLower) && chars.some(isUpper),
        password_rule_digit_or_special: chars.some(function (c) { return isDigit(c) || isSpecial(c); }),
        password_rule_allowed: chars.every(function (c) { return isLower(c) || isUpper(c) || isDigit(c) || isSpecial(c); })
      };
    }

    function mark(item, met) {
      var state = item.querySelector(".rule-state");
      item.classList.remove("rule--met", "rule--unmet");
      if (met === undefined) { state.textContent = ""; return; }
      if (met === null) {
        state.textContent = serverDown ? " : vérifiée quand vous validerez" : " : vérification en cours";
        return;
      }
      item.classList.add(met ? "rule--met" : "rule--unmet");
      state.textContent = met ? " : respectée" : " : non respectée";
    }

    function render() {
      var p = input.value;
      var met = localRules(p);
      var count = 0, total = 0;
      Array.prototype.forEach.call(list.querySelectorAll("[data-rule]"), function (item) {
        var key = item.getAttribute("data-rule");
        var value;
        if (!p) { value = undefined; }
        else if (key in met) { value = met[key]; }
        else { value = key in serverBroken ? !serverBroken[key] : null; }
        mark(item, value);
        total += 1;
        if (value) { count += 1; }
      });
      if (summary) { summary.textContent = p ? count + " règles respectées sur " + total + "." : ""; }
      renderConfirm();
    }

    function renderConfirm() {
      if (!confirmState) { return; }
      confirmState.classList.remove("confirm-state--met", "confirm-state--unmet");
      if (!confirm.value) { confirmState.textContent = ""; return; }
      var same = confirm.value === input.value;
      confirmState.classList.add(same ? "confirm-state--met" : "confirm-state--unmet");
      confirmState.textContent = same ? "Les deux mots de passe sont identiques." : "Les deux mots de passe sont différents.";
    }

    function askServer() {
      var p = input.value;
      serverBroken = {};
      if (!p || !checkUrl || !window.fetch) { render(); return; }
      var mine = ++sequence;
      var body = new FormData();
      body.append("password", p);
      if (csrf) { body.append("csrf_token", csrf.value); }
      // The link opened is known to the server from this browser's session: no secret in the page.
      fetch(checkUrl, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (mine !== sequence || input.value !== p) { return; }
          serverDown = !data;
          if (data && data.broken) {
            serverRules.forEach(function (key) { serverBroken[key] = data.broken.indexOf(key) !== -1; });
          }
          render();
        })
        .catch(function () { serverDown = true; render(); });  // the server checks again on submit
    }

    input.addEventListener("input", function () {
      serverBroken = {};
      render();
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(askServer, 400);
    });
    confirm.addEventListener("input", renderConfirm);

    var toggle = form.querySelector("[data-show-password]");
    if (toggle) {
      toggle.hidden = false;
      toggle.querySelector("input").addEventListener("change", function (e) {
        var type = e.target.checked ? "text" : "password";
        input.type = type;
        confirm.type = type;
      });
    }
    if (input.value) { render(); askServer(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupAudio();
    setupPasswordRules();
  });
})();
