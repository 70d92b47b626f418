// The operator's pages: "select all" on the live console, and filters set before the scripts
// ran. Everything else is htmx and forms.
(function () {
  "use strict";

  function sync(table) {
    var boxes = table.querySelectorAll("input[name=session_id]");
    var all = table.querySelector("[data-select-all]");
    if (!all) return;
    var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    all.checked = ticked > 0 && ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    var table = box.closest && box.closest("table");
    if (!table) return;
    var boxes = table.querySelectorAll("input[name=session_id]");
    var all = table.querySelector("[data-select-all]");
    if (box === all) {
      boxes.forEach(function (b) { b.checked = all.checked; });
    } else if (box.name === "session_id") {
      sync(table);
    }
  });
  // A filter typed or picked before the deferred scripts ran (htmx had not bound its form
  // yet) would go unheard: once they have, a form whose fields no longer hold what the page
  // was drawn with asks for its results. htmx set itself up on this same event, first.
  function edited(field) {
    if (field.options) {
      return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
    return field.type !== "submit" && "defaultValue" in field && field.value !== field.defaultValue;
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[hx-get]").forEach(function (form) {
      if (Array.prototype.some.call(form.elements, edited)) {
        htmx.trigger(form, /\bsubmit\b/.test(form.getAttribute("hx-trigger")) ? "submit" : "change");
      }
    });
  });
  // The table refreshes itself with the ticked boxes kept; "some ticked" is not in HTML.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (root.querySelectorAll) root.querySelectorAll("table").forEach(sync);
  });
})();
