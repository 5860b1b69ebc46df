// The receivables page's chart (Chart.js, vendored): amounts owed per currency, stacked by days past
// due, drawn from the JSON the page carries (#receivables-chart-data). A file, not an inline script:
// the Content-Security-Policy allows only this host's scripts.
(function () {
  var palette = ["#10b981", "#f59e0b", "#f97316", "#ef4444", "#7f1d1d"];
  function draw() {
    var source = document.getElementById("receivables-chart-data");
    var canvas = document.querySelector("canvas[data-receivables-chart]");
    if (!source || !canvas || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (d, i) {
          // Amounts travel as decimal strings; the chart only needs their size.
          return {label: d.label, data: d.data.map(Number), backgroundColor: palette[i % palette.length]};
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: "y",
        locale: document.documentElement.lang || undefined,
        scales: {x: {stacked: true, beginAtZero: true}, y: {stacked: true}}
      }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
