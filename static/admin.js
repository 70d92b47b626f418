// The operator's pages: "select all" on the live console. Everything else is htmx and forms.
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
  // The table refreshes itself with the ticked boxes kept; "some ticked" is not in HTML.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (root.querySelectorAll) root.querySelectorAll("table").forEach(sync);
  });
})();
