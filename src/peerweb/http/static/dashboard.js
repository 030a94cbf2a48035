// The dashboard's only script: live rates and the bandwidth plot (from stats.json, once a
// second), "Copy link" buttons, and a confirmation before "Remove". Everything works without
// it but the plot and the copying.
"use strict";
(function () {
  var SAMPLES = 60;
  var up = [], down = [];

  function human(value) {
    var units = ["B", "kB", "MB", "GB", "TB"];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(value) < 1000 || i === units.length - 1) {
        return i === 0 ? value.toFixed(0) + " B" : value.toFixed(1) + " " + units[i];
      }
      value /= 1000;
    }
  }

  function points(values, top) {
    return values.map(function (v, i) {
      var x = (300 * (i + SAMPLES - values.length)) / (SAMPLES - 1);
      return x.toFixed(1) + "," + (78 - (76 * v) / top).toFixed(1);
    }).join(" ");
  }

  function setField(scope, name, text) {
    var cell = scope.querySelector('[data-field="' + name + '"]');
    if (cell) cell.textContent = text;
  }

  function counted(scope, name, value) {
    var cell = scope.querySelector('[data-field="' + name + '"]');
    if (cell) cell.textContent = value + " " + cell.dataset.noun + (value === 1 ? "" : "s");
  }

  function draw() {
    var top = Math.max.apply(null, up.concat(down, [1000]));
    document.getElementById("plot-up").setAttribute("points", points(up, top));
    document.getElementById("plot-down").setAttribute("points", points(down, top));
  }

  function poll() {
    fetch("/dashboard/stats.json", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (st) {
        up.push(st.upload_rate); down.push(st.download_rate);
        if (up.length > SAMPLES) { up.shift(); down.shift(); }
        draw();
        var legend = document.querySelector(".legend");
        setField(legend, "upload_rate", human(st.upload_rate) + "/s");
        setField(legend, "download_rate", human(st.download_rate) + "/s");
        var summary = document.querySelector(".summary");
        counted(summary, "dht_nodes", st.dht_nodes);
        counted(summary, "peers", st.peers);
        document.querySelectorAll("tr[data-site]").forEach(function (row) {
          var site = st.sites[row.dataset.site];
          if (!site) return;
          setField(row, "peers", String(site.peers));
          setField(row, "upload_rate", human(site.upload_rate) + "/s");
          setField(row, "download_rate", human(site.download_rate) + "/s");
        });
      })
      .catch(function () { /* the node stopped: keep the last picture */ })
      .finally(function () { setTimeout(poll, 1000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button.copy").forEach(function (button) {
      button.addEventListener("click", function () {
        var url = button.dataset.url;
        var done = function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy link"; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(url).then(done, function () { window.prompt("Link:", url); });
        } else {
          window.prompt("Link:", url);
        }
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    if (document.getElementById("plot")) poll();
  });
})();
