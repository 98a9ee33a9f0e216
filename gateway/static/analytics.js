// Analytics dashboard: numbers inserted as text, charts as SVG built element by element.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var SVG = "http://www.w3.org/2000/svg";
  var admin = window.SwitchboardAdmin, el = admin.el, status = admin.status;

  function svg(tag, attrs) { var e = document.createElementNS(SVG, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); }); return e; }
  function pct(v) { return v == null ? "\u2013" : (Math.round(v * 1000) / 10) + " %"; }
  function mins(s) { return s == null ? "\u2013" : (s < 120 ? Math.round(s) + " s" : Math.round(s / 60) + " min"); }

  function figure(name, title, box) {
    var f = el("figure"); f.className = "chart"; f.setAttribute("data-chart", name);
    box.setAttribute("aria-label", title);
    f.append(el("figcaption", title), box);
    return f;
  }

  // Stacked bars per day: contained (blue) and escalated (orange).
  function daily(data) {
    var days = Object.keys(data.daily).sort(), W = 560, H = 200, pad = 30;
    var top = Math.max(1, Math.max.apply(null, days.map(function (d) { return data.daily[d].conversations; }))) * 1.15;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
    var w = (W - pad * 2) / Math.max(1, days.length);
    days.forEach(function (d, i) {
      var v = data.daily[d], x = pad + i * w + 1, base = H - pad;
      var hc = v.contained * (H - pad * 2) / top, he = v.escalated * (H - pad * 2) / top;
      if (hc) box.appendChild(svg("rect", { x: x, y: base - hc, width: Math.max(1, w - 2), height: hc, fill: "#2f5bea", class: "contained" }));
      if (he) box.appendChild(svg("rect", { x: x, y: base - hc - he, width: Math.max(1, w - 2), height: he, fill: "#f0a040", class: "escalated" }));
    });
    box.appendChild(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#9aa3b5" }));
    if (days.length) {
      var a = svg("text", { x: pad, y: H - 10, "font-size": 11, fill: "#4a5266" }); a.textContent = days[0];
      var b = svg("text", { x: W - pad, y: H - 10, "font-size": 11, fill: "#4a5266", "text-anchor": "end" }); b.textContent = days[days.length - 1];
      box.append(a, b);
    }
    return figure("daily", "Conversations per day (blue: contained, orange: escalated)", box);
  }

  // Horizontal bars: one row per label.
  function bars(name, title, rows, format) {
    var W = 560, row = 26, H = Math.max(1, rows.length) * row + 10, left = 170;
    var top = Math.max(1, Math.max.apply(null, rows.map(function (r) { return r[1]; })));
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
    rows.forEach(function (r, i) {
      var y = 5 + i * row, w = (W - left - 60) * r[1] / top;
      var label = svg("text", { x: left - 8, y: y + 16, "text-anchor": "end", "font-size": 12, fill: "#1d2433" }); label.textContent = r[0];
      var value = svg("text", { x: left + w + 6, y: y + 16, "font-size": 12, fill: "#4a5266" }); value.textContent = format(r[1]);
      box.append(label, svg("rect", { x: left, y: y + 4, width: Math.max(1, w), height: 16, fill: "#7b93e8", class: "bar" }), value);
    });
    return figure(name, title, box);
  }

  function render(data) {
    var kpis = $("kpis"); kpis.replaceChildren();
    [["Conversations", data.conversations], ["Containment", pct(data.containment.rate)],
     ["Escalation rate", pct(data.escalation.rate)], ["Fallback rate", pct(data.fallback.rate)],
     ["KB answer rate", pct(data.knowledge_base.answer_rate)], ["KB helpful", pct(data.knowledge_base.helpful_rate)],
     ["CSAT", data.csat.mean == null ? "\u2013" : data.csat.mean + " / 5 (" + data.csat.ratings + ")"],
     ["First response (median)", mins(data.human.first_response.median_s)], ["Handle time (median)", mins(data.human.handle_time.median_s)],
     ["False containment", pct(data.false_containment.rate)]].forEach(function (kv) {
      var div = el("div"); div.append(el("dt", kv[0]), el("dd", kv[1])); kpis.appendChild(div);
    });
    var charts = $("charts"); charts.replaceChildren();
    charts.appendChild(daily(data));
    var triggers = Object.keys(data.escalation.by_trigger).map(function (t) { return [t.replace(/_/g, " "), data.escalation.by_trigger[t].handoffs]; });
    charts.appendChild(bars("triggers", "Handoffs by trigger", triggers, String));
    var intents = Object.keys(data.escalation.by_intent).map(function (i) { return [i, data.escalation.by_intent[i].rate || 0]; });
    charts.appendChild(bars("intents", "Escalation rate by intent", intents, pct));
    var csat = ["1", "2", "3", "4", "5"].map(function (s) { return [s + " \u2605", data.csat.distribution[s] || 0]; });
    charts.appendChild(bars("csat", "CSAT ratings", csat, String));
  }

  async function load() {
    var params = [];
    if ($("from").value) params.push("from=" + encodeURIComponent($("from").value));
    if ($("to").value) params.push("to=" + encodeURIComponent($("to").value));
    var url = "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant) + "/analytics" + (params.length ? "?" + params.join("&") : "");
    try {
      var response = await fetch(url, { headers: admin.headers(state.token) });
      var data = await response.json().catch(function () { return {}; });
      if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
      render(data);
      status("Tenant " + data.tenant_id + ": " + data.from.slice(0, 10) + " to " + data.to.slice(0, 10), true);
    } catch (e) { status(e.message, false); }
  }

  $("filters").addEventListener("submit", function (event) { event.preventDefault(); state.ready.then(function (open) { if (open) load(); }); });
  var state = admin.access(load);
  if (state.token) load();
})();
