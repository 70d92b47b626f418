// The analytics page's charts, drawn with Chart.js (static/vendor, from `make static`) from the
// figures the page carries in <script type="application/json" id="analytics-data">: the CSP
// runs no inline script, and a JSON block is data, not script. The same figures are in the
// table beside each chart; without JavaScript the tables are the page.
(function () {
  "use strict";

  var source = document.getElementById("analytics-data");
  if (!source || typeof window.Chart === "undefined") return;
  var Chart = window.Chart;
  var data = JSON.parse(source.textContent);

  var css = getComputedStyle(document.documentElement);
  function token(name, fallback) {
    return css.getPropertyValue(name).trim() || fallback;
  }
  var ACCENT = token("--accent", "#5b3cc4");
  var DANGER = token("--danger", "#b42318");
  var OK = token("--ok", "#137a42");
  // One colour per end reason, the same on every range (Okabe–Ito: apart for most eyes).
  var REASON_COLOURS = {
    user_requested: ACCENT,
    insufficient_balance: "#E69F00",
    user_disconnected: "#56B4E9",
    astrologer_ended: "#009E73",
    astrologer_disconnected: "#0072B2",
    system_error: "#D55E00",
    spend_cap: "#CC79A7",
    scheduled_end: "#8a7f2a",
    admin_ended: "#4b4760"
  };
  var SPARE = ["#999999", "#332288", "#88CCEE", "#117733"];
  var MINUTES = "#E69F00";
  var perDay = data.by === "day";

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = token("--muted", "#5f5a73");
  Chart.defaults.borderColor = token("--line", "#e4e0ef");
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false; // figures to read, not to watch arrive
  Chart.defaults.plugins.legend.position = "bottom";
  Chart.defaults.plugins.legend.labels.boxWidth = 14;
  Chart.defaults.datasets.bar.maxBarThickness = 56; // a few astrologers: bars, not slabs
  if (window.matchMedia("(max-width: 480px)").matches) { // a phone: the plot keeps its room
    Chart.defaults.font.size = 11;
    Chart.defaults.plugins.legend.labels.boxWidth = 10;
  }

  // Lakhs and crores, as the pages write money (consult/money.py): ₹1,00,000.00.
  var grouping = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var whole = new Intl.NumberFormat("en-IN", { maximumFractionDigits: 2 });
  function rupees(value) {
    return (value < 0 ? "-₹" : "₹") + grouping.format(Math.abs(value));
  }
  function inRupees(paise) {
    return paise.map(function (p) { return p / 100; });
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    canvas.closest("figure").hidden = false; // a size to draw into before the chart is made
    new Chart(canvas, config);
  }

  function countAxis(more) {
    return Object.assign({ beginAtZero: true, grace: "5%", ticks: { precision: 0 } }, more);
  }

  draw("chart-volume", {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Sessions", data: data.sessions, backgroundColor: ACCENT, yAxisID: "y" },
        {
          // Over days a line; between astrologers, who have no order, a bar beside each one's.
          label: "Billed minutes", data: data.billedMinutes, type: perDay ? "line" : "bar",
          yAxisID: "minutes", borderColor: MINUTES, backgroundColor: MINUTES, pointRadius: 3,
          cubicInterpolationMode: "monotone", // never dips below zero
          order: perDay ? -1 : 0 // a line over the bars; a bar after its sessions
        }
      ]
    },
    options: {
      interaction: { mode: "index", intersect: false },
      // Listed as given, whatever order they are drawn in.
      plugins: { legend: { labels: { sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } } } },
      scales: {
        y: countAxis({ title: { display: true, text: "Sessions" } }),
        minutes: {
          position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
          title: { display: true, text: "Minutes" }
        }
      }
    }
  });

  draw("chart-money", {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Gross", data: inRupees(data.grossPaise), backgroundColor: ACCENT },
        { label: "Commission", data: inRupees(data.commissionPaise), backgroundColor: OK },
        { label: "Refunds", data: inRupees(data.refundedPaise), backgroundColor: DANGER }
      ]
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { beginAtZero: true, ticks: { callback: function (v) { return "₹" + whole.format(v); } } }
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (item) { return item.dataset.label + ": " + rupees(item.parsed.y); }
          }
        }
      }
    }
  });

  draw("chart-reasons", {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: data.reasons.map(function (reason, i) {
        return {
          label: reason.label, data: reason.counts,
          backgroundColor: REASON_COLOURS[reason.code] || SPARE[i % SPARE.length]
        };
      })
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { stacked: true }, y: countAxis({ stacked: true }) }
    }
  });
})();
