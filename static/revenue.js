// The revenue page's charts (Chart.js, vendored), drawn from the JSON the page carries
// (#revenue-charts-data): per currency, revenue stacked by stream and month, and the waterfall of
// what remains to recognize. A file, not an inline script: the Content-Security-Policy allows only
// this host's scripts. Every chart has a table below it with the same figures.
(function () {
  var palette = ["#1f3b61", "#10b981", "#f59e0b", "#a855f7"];
  function draw() {
    var source = document.getElementById("revenue-charts-data");
    if (!source || !window.Chart) { return; }
    var charts = JSON.parse(source.textContent);
    var locale = document.documentElement.lang || undefined;
    document.querySelectorAll("canvas[data-revenue-chart]").forEach(function (canvas) {
      var chart = charts[Number(canvas.getAttribute("data-index"))];
      if (!chart) { return; }
      var kind = canvas.getAttribute("data-revenue-chart");
      var data;
      if (kind === "revenue") {
        data = {
          labels: chart.revenue.labels,
          datasets: chart.revenue.datasets.map(function (d, i) {
            // Amounts travel as decimal strings; the chart only needs their size.
            return {label: d.label, data: d.data.map(Number), backgroundColor: palette[i % palette.length]};
          })
        };
      } else {
        var last = chart.waterfall.data.length - 1;
        data = {
          labels: chart.waterfall.labels,
          datasets: [{
            label: chart.waterfall.label,
            data: chart.waterfall.data.map(Number),
            // The last bar is the unscheduled part: greyed.
            backgroundColor: chart.waterfall.data.map(function (_, i) { return i === last ? "#9ca3af" : palette[0]; })
          }]
        };
      }
      new window.Chart(canvas, {
        type: "bar",
        data: data,
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          locale: locale,
          plugins: {legend: {display: kind === "revenue"}},
          scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}
        }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
