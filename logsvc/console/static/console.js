// logsvc console: the charts. Every element with data-chart-url gets a uPlot chart of the JSON
// there ({"columns": [[t...], [series...]...], "labels": [...]}), fetched again every
// data-refresh-ms. No inline script anywhere: the page's Content-Security-Policy forbids it.
(function () {
  "use strict";
  var COLORS = ["#2f6fed", "#e0892b", "#1d7a3a", "#b42318"];

  function textColor() {
    return getComputedStyle(document.body).color;
  }

  function options(el, labels) {
    var axisStroke = textColor();
    var series = [{}];
    labels.forEach(function (label, i) {
      series.push({ label: label, stroke: COLORS[i % COLORS.length], width: 2, scale: i === 0 ? "y" : "y2",
        spanGaps: true });
    });
    var axes = [{ stroke: axisStroke }, { stroke: axisStroke, scale: "y" }];
    if (labels.length > 1) axes.push({ stroke: axisStroke, scale: "y2", side: 1, grid: { show: false } });
    return { width: Math.max(300, el.clientWidth), height: 220, series: series, axes: axes,
      scales: { x: { time: true } } };
  }

  function start(el) {
    var chart = null;
    var url = el.getAttribute("data-chart-url");
    var every = parseInt(el.getAttribute("data-refresh-ms") || "2000", 10);
    function draw(body) {
      var cols = body.columns;
      // what the chart shows, for a test (or a curious reader) to check without reading pixels
      el.setAttribute("data-points", String(cols[0].length));
      var first = cols.length > 1 ? cols[1] : [];
      var seen = first.filter(function (v) { return v !== null; });
      if (seen.length) el.setAttribute("data-max", String(Math.max.apply(null, seen)));
      for (var i = first.length - 1; i >= 0; i--) {
        if (first[i] !== null) { el.setAttribute("data-last", String(first[i])); break; }
      }
      if (chart === null) {
        chart = new uPlot(options(el, body.labels), cols, el);
      } else {
        chart.setData(cols);
      }
    }
    function load() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body) draw(body); })
        .catch(function () {})
        .then(function () { setTimeout(load, every); });
    }
    load();
    window.addEventListener("resize", function () {
      if (chart) chart.setSize({ width: Math.max(300, el.clientWidth), height: 220 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-url]").forEach(start);
  });
})();
