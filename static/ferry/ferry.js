// Ferry's few behaviours that need no server round trip: inputs shown only for some choices
// (data-show-when="name=value|value", looked up in the closest [data-scope], else the form),
// rows added from a <template> or removed in editors, and copy buttons (data-copy="<input id>").
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

  function init(root) {
    syncConditionals(root);
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    // Narrow screens start with the filter panel folded, unless a filter is set.
    if (window.matchMedia("(max-width: 999px)").matches) {
      document.querySelectorAll("details.filters:not([data-active])").forEach(function (d) { d.open = false; });
    }
  });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
