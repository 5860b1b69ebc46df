// The portal's charts (Chart.js, vendored), drawn from the JSON the page carries
// (#portal-chart-data): on the overview, each meter's usage so far beside its allowance; on the
// usage page, the usage per day, stacked by series when the quantities add up. A file, not an
// inline script: the Content-Security-Policy allows only this host's scripts. Each chart has its
// figures in a table beside it, for screen readers and keyboards.
(function () {
  var palette = ["#0b7285", "#adb5bd", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0ea5e9", "#84cc16", "#ec4899", "#64748b"];
  function brand() {
    var value = getComputedStyle(document.documentElement).getPropertyValue("--tp-brand").trim();
    return value || palette[0];
  }
  function options(extra) {
    var base = {responsive: true, maintainAspectRatio: false, animation: false, locale: document.documentElement.lang || undefined};
    for (var key in extra) { base[key] = extra[key]; }
    return base;
  }
  var builders = {
    allowance: function (data) {
      var colours = [brand(), palette[1]];
      return {type: "bar", data: {labels: data.labels, datasets: data.datasets.map(function (d, i) {
        return {label: d.label, data: d.data, backgroundColor: colours[i % colours.length]};
      })}, options: options({indexAxis: "y", scales: {x: {beginAtZero: true}}})};
    },
    daily: function (data) {
      return {type: "bar", data: {labels: data.labels, datasets: data.datasets.map(function (d, i) {
        return {label: d.label, data: d.data, backgroundColor: i === 0 ? brand() : palette[(i + 1) % palette.length]};
      })}, options: options({plugins: {legend: {display: data.datasets.length > 1}},
        scales: {x: {stacked: data.stacked}, y: {stacked: data.stacked, beginAtZero: true}}})};
    }
  };
  function draw() {
    var source = document.getElementById("portal-chart-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-portal-chart]").forEach(function (canvas) {
      var kind = canvas.getAttribute("data-portal-chart");
      if (builders[kind]) { new window.Chart(canvas, builders[kind](data)); }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
