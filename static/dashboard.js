// The dashboard's charts (Chart.js, vendored), drawn from the JSON the page carries
// (#dashboard-charts-data): MRR movements stacked by month with the MRR as a line, revenue stacked
// by leg, receivables by days past due, active devices, and one small chart per meter. An amount
// whose exchange rate is missing is null: a gap, never zero. A file, not an inline script: the
// Content-Security-Policy allows only this host's scripts. Each chart has its figures in a table.
(function () {
  var palette = ["#1f3b61", "#10b981", "#f59e0b", "#a855f7", "#ef4444"];
  var moveColours = {new: "#10b981", expansion: "#3b82f6", reactivation: "#8b5cf6", contraction: "#f59e0b", churn: "#ef4444"};
  function numbers(list, sign) {
    // Amounts travel as decimal strings; the chart only needs their size.
    return list.map(function (v) { return v === null ? null : (sign || 1) * Number(v); });
  }
  function options(extra) {
    var base = {responsive: true, maintainAspectRatio: false, animation: false, locale: document.documentElement.lang || undefined};
    for (var key in extra) { base[key] = extra[key]; }
    return base;
  }
  var builders = {
    mrr: function (data) {
      var bars = ["new", "expansion", "reactivation", "contraction", "churn"].map(function (name) {
        var sign = (name === "contraction" || name === "churn") ? -1 : 1;
        return {type: "bar", label: data.names[name], data: numbers(data.series[name], sign),
                backgroundColor: moveColours[name], stack: "moves", order: 2};
      });
      var line = {type: "line", label: data.names.end, data: numbers(data.series.end), borderColor: "#111827",
                  backgroundColor: "#111827", spanGaps: false, stack: "mrr", order: 1};
      return {type: "bar", data: {labels: data.labels, datasets: bars.concat([line])},
              options: options({scales: {x: {stacked: true}, y: {stacked: true}}})};
    },
    revenue: function (data) {
      return {type: "bar", data: {labels: data.labels, datasets: data.datasets.map(function (d, i) {
        return {label: d.label, data: numbers(d.data), backgroundColor: palette[i % palette.length]};
      })}, options: options({scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}})};
    },
    aging: function (data) {
      return {type: "bar", data: {labels: data.labels, datasets: [{label: data.label, data: numbers(data.data),
        backgroundColor: ["#10b981", "#f59e0b", "#f97316", "#ef4444", "#7f1d1d"]}]},
        options: options({plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true}}})};
    },
    devices: function (data) {
      return {type: "line", data: {labels: data.labels, datasets: [{label: data.label, data: data.data,
        borderColor: palette[0], backgroundColor: palette[0]}]},
        options: options({plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}})};
    },
    usage: function (data) {
      return {type: "bar", data: {labels: data.labels, datasets: [{label: data.label, data: numbers(data.data),
        backgroundColor: palette[1]}]},
        options: options({plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true}}})};
    }
  };
  function draw() {
    var source = document.getElementById("dashboard-charts-data");
    if (!source || !window.Chart) { return; }
    var charts = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-dashboard-chart]").forEach(function (canvas) {
      var kind = canvas.getAttribute("data-dashboard-chart");
      var data = charts[kind];
      if (kind === "usage" && data) { data = data[Number(canvas.getAttribute("data-index"))]; }
      if (!data || !builders[kind]) { return; }
      new window.Chart(canvas, builders[kind](data));
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
