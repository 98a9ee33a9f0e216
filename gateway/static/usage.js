// Usage page: server values are inserted as text; charts are SVG built element by element.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var SVG = "http://www.w3.org/2000/svg";
  var admin = window.SwitchboardAdmin, el = admin.el, status = admin.status;

  function svg(tag, attrs) { var e = document.createElementNS(SVG, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); }); return e; }
  function label(unit) { return unit.replace(/_/g, " "); }

  function daysOf(period) {
    var parts = period.split("-"), year = +parts[0], month = +parts[1];
    var count = new Date(Date.UTC(year, month, 0)).getUTCDate(), days = [];
    for (var d = 1; d <= count; d++) days.push(period + "-" + (d < 10 ? "0" + d : d));
    return days;
  }

  // One chart: daily bars, cumulative line, limit line.
  function chart(unit, period) {
    var days = daysOf(period), W = 560, H = 180, pad = 32;
    var values = days.map(function (d) { return unit.daily[d] || 0; });
    var running = 0, cumulative = values.map(function (v) { running += v; return running; });
    // Scaled to the usage: a limit far above it (10,000 messages against 40 used) would flatten every
    // bar into the axis. Such a limit is named above the chart instead of drawn.
    var limitShown = unit.limit && unit.limit <= Math.max(1, running) * 2;
    var top = Math.max(1, running, limitShown ? unit.limit : 0) * 1.1;
    var x = function (i) { return pad + (i + 0.5) * (W - pad * 2) / days.length; };
    var y = function (v) { return H - pad - v * (H - pad * 2) / top; };
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
    var title = svg("title", {}); title.textContent = label(unit.unit) + ": " + unit.used + (unit.limit ? " of " + unit.limit : "") + " in " + period;
    box.appendChild(title);
    box.setAttribute("aria-label", title.textContent);
    box.appendChild(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#9aa3b5" }));
    var barWidth = Math.max(2, (W - pad * 2) / days.length - 3);
    values.forEach(function (v, i) {
      if (!v) return;
      var bar = svg("rect", { x: x(i) - barWidth / 2, y: y(v), width: barWidth, height: H - pad - y(v), fill: "#7b93e8" });
      var tip = svg("title", {}); tip.textContent = days[i] + ": " + v; bar.appendChild(tip);
      box.appendChild(bar);
    });
    var today = new Date().toISOString().slice(0, 10);
    var shown = days.indexOf(today) >= 0 ? days.indexOf(today) + 1 : days.length;  // the future has no total yet
    box.appendChild(svg("polyline", { points: cumulative.slice(0, shown).map(function (v, i) { return x(i) + "," + y(v); }).join(" "), fill: "none", stroke: "#2f5bea", "stroke-width": 2 }));
    if (unit.limit && !limitShown) {
      var note = svg("text", { x: W - pad, y: pad - 12, "text-anchor": "end", "font-size": 11, fill: "#c0392b", class: "limit-note" });
      note.textContent = "limit " + unit.limit + " (off the scale, " + (unit.percent || 0) + " % used)";
      box.appendChild(note);
    }
    if (limitShown) {
      box.appendChild(svg("line", { x1: pad, y1: y(unit.limit), x2: W - pad, y2: y(unit.limit), stroke: "#c0392b", "stroke-dasharray": "6 4", class: "limit" }));
      var text = svg("text", { x: W - pad, y: y(unit.limit) - 4, "text-anchor": "end", "font-size": 11, fill: "#c0392b" });
      text.textContent = "limit " + unit.limit;
      box.appendChild(text);
    }
    var first = svg("text", { x: pad, y: H - 8, "font-size": 11, fill: "#4a5266" }); first.textContent = days[0];
    var last = svg("text", { x: W - pad, y: H - 8, "font-size": 11, "text-anchor": "end", fill: "#4a5266" }); last.textContent = days[days.length - 1];
    box.append(first, last);
    var figure = el("figure"); figure.className = "chart";
    figure.setAttribute("data-unit", unit.unit);
    figure.append(el("figcaption", label(unit.unit) + " \u00b7 " + unit.used + (unit.limit ? " / " + unit.limit : "")), box);
    return figure;
  }

  // A gauge (seats, documents in use now): a meter against the limit, not a daily series.
  function meter(unit) {
    var W = 560, H = 56, pad = 32, share = unit.limit ? Math.min(1, unit.used / unit.limit) : 1;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
    box.setAttribute("aria-label", label(unit.unit) + ": " + unit.used + (unit.limit ? " of " + unit.limit : "") + " in use");
    box.appendChild(svg("rect", { x: pad, y: 12, width: W - pad * 2, height: 20, fill: "#e6e9f2", rx: 4 }));
    box.appendChild(svg("rect", { x: pad, y: 12, width: Math.max(2, (W - pad * 2) * share), height: 20, rx: 4, class: "used",
                                  fill: share >= 1 ? "#c0392b" : (share >= 0.8 ? "#e67e22" : "#7b93e8") }));
    var text = svg("text", { x: pad, y: 48, "font-size": 11, fill: "#4a5266" });
    text.textContent = unit.used + " in use now" + (unit.limit ? " of " + unit.limit + " (" + (unit.percent || 0) + " %)" : "");
    box.appendChild(text);
    var figure = el("figure"); figure.className = "chart gauge";
    figure.setAttribute("data-unit", unit.unit);
    figure.append(el("figcaption", label(unit.unit) + " \u00b7 " + unit.used + (unit.limit ? " / " + unit.limit : "")), box);
    return figure;
  }

  async function load() {
    var period = $("period").value.trim();
    var url = "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant) + "/usage" + (period ? "?period=" + encodeURIComponent(period) : "");
    try {
      var response = await fetch(url, { headers: admin.headers(state.token) });
      var data = await response.json().catch(function () { return {}; });
      if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
      render(data);
      status("Tenant " + data.tenant_id + ", " + data.period + (data.reconciled ? " \u00b7 ledger and counters agree" : " \u00b7 counters differ from the ledger"), data.reconciled);
    } catch (e) { status(e.message, false); }
  }

  function render(data) {
    $("plan-name").textContent = data.plan ? "\u00b7 " + data.plan.name : "\u00b7 none (metered, not limited)";
    var rows = $("units"); rows.replaceChildren();
    var charts = $("charts"); charts.replaceChildren();
    var warnings = [];
    data.units.forEach(function (u) {
      var tr = el("tr");
      [label(u.unit), u.used, u.limit == null ? "unlimited" : u.limit, u.percent == null ? "" : u.percent + " %",
       u.policy === "hard_stop" ? "stop" : (u.policy === "overage" ? "billed per unit" : "")].forEach(function (v) { tr.appendChild(el("td", v)); });
      if (u.percent != null && u.percent >= 80) { tr.className = u.percent >= 100 ? "over" : "warn"; warnings.push(label(u.unit) + " at " + u.percent + " %"); }
      rows.appendChild(tr);
      if (u.used || u.limit) charts.appendChild(u.kind === "gauge" ? meter(u) : chart(u, data.period));
    });
    var banner = $("banner");
    banner.hidden = !warnings.length;
    banner.textContent = warnings.length ? "Usage warning: " + warnings.join(", ") + "." : "";
  }

  $("filters").addEventListener("submit", function (event) { event.preventDefault(); state.ready.then(function (open) { if (open) load(); }); });
  var state = admin.access(load);
  if (state.token) load();
})();
