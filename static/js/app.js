// Small behaviours for server-rendered pages. No inline scripts (the CSP forbids them).
(function () {
  "use strict";

  // <button data-copy="#field-id">Copy</button> copies the field's value.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var text = field.value !== undefined ? field.value : field.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { field.select(); document.execCommand("copy"); done(); });
    } else {
      field.select && field.select();
      document.execCommand("copy");
      done();
    }
  });

  // <button type="submit" data-confirm="Pay Jo 30.00 EUR again?"> asks before the form is sent.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-confirm], input[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  // <canvas data-chart="#json-script-id"> draws one measure as bars from
  // {title, unit: "count"|"money", currency, labels, horizontal?, notes?, series: [{label, data, labels?, previous?}]}.
  // A series marked "previous" is the period before, drawn faint behind this period's bars; its own
  // dates ("labels") show in the tooltip. "notes" adds lines to a bar's tooltip (its other figures).
  var colour = "#0172ad", faint = "rgba(1, 114, 173, 0.22)";
  function formatter(spec, whole) {
    if (spec.unit !== "money") return function (v) { return Number(v).toLocaleString(); };
    var fmt;
    try {
      fmt = new Intl.NumberFormat(undefined, whole
        ? { style: "currency", currency: spec.currency, maximumFractionDigits: 0, minimumFractionDigits: 0 }
        : { style: "currency", currency: spec.currency });
    } catch (e) { fmt = { format: function (v) { return Number(v).toFixed(whole ? 0 : 2) + "\u00a0" + spec.currency; } }; }
    return function (v) { return fmt.format(Number(v)); };
  }
  function drawCharts(onlyNew) {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas._chart) { if (onlyNew) return; canvas._chart.destroy(); }
      var source = document.querySelector(canvas.getAttribute("data-chart"));
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var format = formatter(spec, false), tick = formatter(spec, true);
      var valueAxis = spec.horizontal ? "x" : "y", categoryAxis = spec.horizontal ? "y" : "x";
      var scales = {};
      scales[valueAxis] = {
        beginAtZero: true,
        ticks: { precision: 0, callback: function (v) { return tick(v); } }
      };
      scales[categoryAxis] = { grid: { display: false }, ticks: { autoSkip: true, autoSkipPadding: 16, maxRotation: 0 } };
      canvas._chart = new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (s) {
            return {
              label: s.label, data: s.data.map(Number), dates: s.labels,
              backgroundColor: s.previous ? faint : colour, borderWidth: 0,
              // The previous period sits behind this period's bar, slightly wider.
              grouped: !s.previous, order: s.previous ? 2 : 1,
              barPercentage: s.previous ? 0.95 : 0.7, categoryPercentage: 0.9
            };
          })
        },
        options: {
          indexAxis: spec.horizontal ? "y" : "x",
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false, axis: categoryAxis },
          plugins: {
            legend: { display: spec.series.length > 1, position: "bottom", labels: { boxWidth: 12 } },
            tooltip: {
              callbacks: {
                label: function (item) {
                  var dates = item.dataset.dates;
                  var when = dates ? " (" + dates[item.dataIndex] + ")" : "";
                  return item.dataset.label + when + ": " + format(item.raw);
                },
                afterBody: function (items) {
                  return spec.notes && items.length ? spec.notes[items[0].dataIndex] : [];
                }
              }
            }
          },
          scales: scales
        }
      });
    });
  }
  // After an htmx swap (a new range, the breakdown loading in) only the new canvases are drawn;
  // an outerHTML swap's event target is the element that was replaced, so the whole page is looked at.
  document.addEventListener("DOMContentLoaded", function () { drawCharts(false); });
  document.addEventListener("htmx:afterSettle", function () { drawCharts(true); });
})();
