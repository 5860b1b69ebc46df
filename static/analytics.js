// The MRR page's chart (Chart.js, vendored): movements stacked by month (new, expansion and
// reactivation up; contraction and churn down) and the MRR at each month's end as a line, from the
// JSON the page carries (#mrr-chart-data). A month whose exchange rate is missing has no value (a
// gap), never zero. A file, not an inline script: the Content-Security-Policy allows only this host's scripts.
(function () {
  var colours = {new: "#10b981", expansion: "#3b82f6", reactivation: "#8b5cf6", contraction: "#f59e0b", churn: "#ef4444"};
  function values(list, sign) {
    return list.map(function (v) { return v === null ? null : sign * Number(v); });
  }
  function draw() {
    var source = document.getElementById("mrr-chart-data");
    var canvas = document.querySelector("canvas[data-mrr-chart]");
    if (!source || !canvas || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    var bars = ["new", "expansion", "reactivation", "contraction", "churn"].map(function (name) {
      var sign = (name === "contraction" || name === "churn") ? -1 : 1;
      return {type: "bar", label: data.names[name], data: values(data.series[name], sign),
              backgroundColor: colours[name], stack: "moves", order: 2};
    });
    var line = {type: "line", label: data.names.end, data: values(data.series.end, 1),
                borderColor: "#111827", backgroundColor: "#111827", spanGaps: false, stack: "mrr", order: 1};
    new window.Chart(canvas, {
      data: {labels: data.labels, datasets: bars.concat([line])},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: document.documentElement.lang || undefined,
        scales: {x: {stacked: true}, y: {stacked: true}}
      }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
