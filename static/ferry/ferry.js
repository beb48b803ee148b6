// Ferry's few behaviours that need no server round trip: inputs shown only for some choices
// (data-show-when="name=value|value", looked up in the closest [data-scope], else the form),
// rows added from a <template> or removed in editors, copy buttons (data-copy="<input id>"), the
// error summary's focus, and the menu button of narrow screens.
(function () {
  "use strict";

  function currentValue(scope, name) {
    for (const input of scope.querySelectorAll('[name="' + name + '"]')) {
      if (input.type !== "radio" && input.type !== "checkbox") return input.value;
      if (input.checked) return input.value;
    }
    return "";
  }

  function syncConditionals(root) {
    (root || document).querySelectorAll("[data-show-when]").forEach(function (el) {
      const scope = el.closest("[data-scope]") || el.closest("form");
      if (!scope) return;
      const [name, values] = el.dataset.showWhen.split("=");
      el.hidden = !values.split("|").includes(currentValue(scope, name));
    });
  }

  document.addEventListener("change", function () { syncConditionals(document); });

  document.addEventListener("click", function (event) {
    const add = event.target.closest("[data-add-row]");
    if (add) {
      event.preventDefault();
      const template = document.getElementById(add.dataset.addRow + "-template");
      const body = document.getElementById(add.dataset.addRow + "-rows");
      body.appendChild(template.content.cloneNode(true));
      const inputs = body.lastElementChild.querySelectorAll("input, select");
      if (inputs.length) inputs[0].focus();
      syncConditionals(body);
      return;
    }
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const input = document.getElementById(copy.dataset.copy);
      input.select();
      if (navigator.clipboard) {
        navigator.clipboard.writeText(input.value).then(function () { copy.textContent = "Copied"; });
      }
      return;
    }
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      event.preventDefault();
      remove.closest("tr").remove();
    }
  });

  // A card that htmx replaces as it polls (a job's status) names a live region outside itself:
  // a screen reader hears of a change of state, not every refresh.
  const announced = new Map();
  function announceState(root) {
    const cards = root.matches && root.matches("[data-announce]") ? [root] : root.querySelectorAll("[data-announce]");
    cards.forEach(function (card) {
      const region = document.querySelector(card.dataset.announce);
      if (!region) return;
      const before = announced.get(card.id);
      announced.set(card.id, card.dataset.state);
      if (before !== undefined && before !== card.dataset.state) region.textContent = card.dataset.announceText;
    });
  }

  function init(root) {
    syncConditionals(root);
    announceState(root);
  }

  // A form sent back with errors: its summary lists them, and focus goes to the first field in
  // error (or to the summary when no field is named), so a keyboard or screen reader user starts there.
  function focusFirstError() {
    const summary = document.getElementById("error-summary");
    if (!summary) return;
    const first = summary.querySelector("a[href^='#']");
    const target = first && fieldInput(first.getAttribute("href").slice(1));
    (target || summary).focus();
  }

  function fieldInput(id) {
    const element = document.getElementById(id);
    if (!element) return null;
    if (element.matches("input, select, textarea")) return element;
    return element.querySelector("input:not([type=hidden]), select, textarea");
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("#error-summary a[href^='#']");
    if (!link) return;
    const input = fieldInput(link.getAttribute("href").slice(1));
    if (input) {
      event.preventDefault();
      input.focus();
    }
  });

  // The menu button of narrow screens folds the navigation away.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-menu-toggle]");
    if (!button) return;
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    document.getElementById(button.getAttribute("aria-controls")).classList.toggle("open", open);
  });

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    focusFirstError();
    // Narrow screens start with the filter panel folded, unless a filter is set.
    if (window.matchMedia("(max-width: 999px)").matches) {
      document.querySelectorAll("details.filters:not([data-active])").forEach(function (d) { d.open = false; });
    }
  });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
