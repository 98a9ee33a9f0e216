// Models page: every value from the server is inserted as text, never as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var admin = window.SwitchboardAdmin, el = admin.el, status = admin.status;
  var SVG = "http://www.w3.org/2000/svg";
  var METRICS = [["intent_accuracy", "intent accuracy", "#2f5bea"], ["intent_macro_f1", "macro F1", "#8e44ad"],
    ["oos_recall", "out-of-scope recall", "#16a085"], ["sentiment_accuracy", "sentiment", "#d35400"],
    ["conversation_tests", "conversation tests", "#7f8c8d"]];
  var timer = null;

  function base() { return "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant) + "/models"; }

  async function api(method, path, body) {
    await admin.opened(state);
    return admin.request(state.token, base() + path, method, body);
  }

  function svg(tag, attrs) { var e = document.createElementNS(SVG, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); }); return e; }

  function pct(v) { return typeof v === "number" ? (v * 100).toFixed(1) + " %" : "–"; }

  function chart(versions) {
    var box = $("chart"); box.textContent = "";
    var scored = versions.filter(function (v) { return v.metrics && typeof v.metrics.intent_accuracy === "number"; }).reverse();
    if (!scored.length) { box.appendChild(el("p", "No scored versions yet.")); return; }
    var W = 640, H = 220, pad = 36, lo = 0.5;
    var x = function (i) { return pad + (scored.length === 1 ? (W - 2 * pad) / 2 : i * (W - 2 * pad) / (scored.length - 1)); };
    var y = function (v) { return H - pad - (Math.max(v, lo) - lo) / (1 - lo) * (H - 2 * pad); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img" });
    var title = svg("title", {}); title.textContent = "Held-out metrics of each version"; root.appendChild(title);
    [0.5, 0.75, 1].forEach(function (t) {
      root.appendChild(svg("line", { x1: pad, y1: y(t), x2: W - pad, y2: y(t), stroke: "#e1e4ee" }));
      var label = svg("text", { x: pad - 4, y: y(t) + 4, "text-anchor": "end", "font-size": 10, fill: "#5a6275" }); label.textContent = Math.round(t * 100) + "%"; root.appendChild(label);
    });
    scored.forEach(function (v, i) {
      var label = svg("text", { x: x(i), y: H - pad + 14, "text-anchor": "middle", "font-size": 11, fill: v.status === "production" ? "#146c2e" : v.status === "refused" ? "#b00020" : "#1d2433" });
      label.textContent = "v" + v.version; root.appendChild(label);
    });
    METRICS.forEach(function (m) {
      var points = scored.map(function (v, i) { return typeof v.metrics[m[0]] === "number" ? x(i) + "," + y(v.metrics[m[0]]) : null; }).filter(Boolean);
      root.appendChild(svg("polyline", { points: points.join(" "), fill: "none", stroke: m[2], "stroke-width": 2, class: "metric-line" }));
      scored.forEach(function (v, i) {
        if (typeof v.metrics[m[0]] !== "number") return;
        var dot = svg("circle", { cx: x(i), cy: y(v.metrics[m[0]]), r: 3, fill: m[2] });
        var tip = svg("title", {}); tip.textContent = "v" + v.version + " " + m[1] + ": " + pct(v.metrics[m[0]]); dot.appendChild(tip);
        root.appendChild(dot);
      });
    });
    box.appendChild(root);
    var legend = el("figcaption");
    METRICS.forEach(function (m) { var s = el("span", "\u25A0 " + m[1] + "  "); s.style.color = m[2]; legend.appendChild(s); });
    box.appendChild(legend);
  }

  function row(v) {
    var tr = el("tr"), m = v.metrics || {};
    tr.setAttribute("data-version", String(v.version));
    tr.appendChild(el("td", "v" + v.version + (v.source === "base" ? " (base)" : v.source === "refine" ? " (fine-tuned)" : "")));
    tr.appendChild(el("td", v.status + (v.stage ? " · " + v.stage : "")));
    ["intent_accuracy", "intent_macro_f1", "oos_recall", "sentiment_accuracy", "conversation_tests"].forEach(function (k) { tr.appendChild(el("td", pct(m[k]))); });
    var gate = el("td", v.gate ? (v.gate.passed ? "passed" : "refused") : "–");
    if (v.gate && v.gate.reasons && v.gate.reasons.length) gate.title = v.gate.reasons.join("\n");
    if (v.error) gate.title = v.error;
    tr.appendChild(gate);
    tr.appendChild(el("td", v.promoted_by || "–"));
    var actions = el("td");
    if (v.status === "candidate" && v.gate && v.gate.passed) {
      var p = el("button", "Promote"); p.type = "button";
      p.addEventListener("click", function () { act("POST", "/" + v.version + "/promote", null, "v" + v.version + " promoted"); });
      actions.appendChild(p);
    }
    if (v.status === "retired") {
      var r = el("button", "Roll back to this"); r.type = "button";
      r.addEventListener("click", function () { act("POST", "/rollback", { to_version: v.version }, "rolled back to v" + v.version); });
      actions.appendChild(r);
    }
    tr.appendChild(actions);
    return tr;
  }

  async function act(method, path, body, done) {
    try { await api(method, path, body); status(done, true); load(); } catch (e) { status(e.message, false); }
  }

  async function load() {
    try {
      var data = await api("GET", "");
      $("tolerance").textContent = pct(data.tolerance);
      var tbody = $("versions"); tbody.textContent = "";
      data.versions.forEach(function (v) { tbody.appendChild(row(v)); });
      var list = $("deployments"); list.textContent = "";
      data.deployments.forEach(function (d) {
        list.appendChild(el("li", d.at.slice(0, 19).replace("T", " ") + " · v" + d.version + " " + d.action + " by " + d.actor + (d.previous_version ? " (was v" + d.previous_version + ")" : "")));
      });
      chart(data.versions);
      var running = data.versions.filter(function (v) { return v.status === "training"; });
      $("running").textContent = running.length ? "v" + running[0].version + " is " + (running[0].stage || "training") + "…" : "";
      $("retrain").disabled = running.length > 0;
      if (timer) { clearTimeout(timer); timer = null; }
      if (running.length) timer = setTimeout(load, 3000);
      status("", true);
    } catch (e) { status(e.message, false); }
  }

  $("retrain").addEventListener("click", async function () {
    try {
      var started = await api("POST", "/retrain", { promote: $("promote").checked });
      status("v" + started.version + " started", true);
      load();
    } catch (e) { status(e.message, false); }
  });

  var state = admin.access(load);
  if (state.token) load();
})();
