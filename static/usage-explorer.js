// The usage explorer's chart (Chart.js, vendored): drawn from the JSON that the panel carries
// (#usage-chart-data), again after each htmx swap of the panel. A file, not an inline script: the
// Content-Security-Policy allows only this host's scripts.
(function () {
  var chart = null;
  var palette = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899", "#64748b", "#14b8a6"];
  function draw() {
    if (chart) { chart.destroy(); chart = null; }
    var source = document.getElementById("usage-chart-data");
    // No id on the canvas: htmx would settle its attributes after the swap and clear the drawing.
    var canvas = document.querySelector("#usage-panel canvas[data-usage-chart]");
    if (!source || !canvas || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (d, i) {
          return {label: d.label, data: d.data, backgroundColor: palette[i % palette.length]};
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: document.documentElement.lang || undefined,
        plugins: {legend: {display: data.datasets.length > 1}},
        scales: {x: {stacked: data.stacked}, y: {stacked: data.stacked, beginAtZero: true}}
      }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "usage-panel") { draw(); }
  });
  document.body.addEventListener("htmx:historyRestore", draw);
})();
