// Review inbox: every value from the server is inserted as text, never as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var admin = window.SwitchboardAdmin, el = admin.el, status = admin.status;

  function base() { return "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant); }

  async function api(method, path, body) {
    await admin.opened(state);
    return admin.request(state.token, base() + path, method, body);
  }

  async function decide(item, action, intent) {
    try {
      var result = await api("POST", "/inbox/" + item.message_id, { action: action, intent: intent });
      status(result.status + (result.intent ? " as " + result.intent : "") + (result.covers > 1 ? " (" + result.covers + " messages)" : "") + (result.new_intent ? " · new intent" : ""), true);
      load();
    } catch (e) { status(e.message, false); }
  }

  function row(item) {
    var tr = el("tr");
    tr.setAttribute("data-message-id", String(item.message_id));
    tr.appendChild(el("td", item.text));
    tr.appendChild(el("td", item.reasons.join(", ").replace(/_/g, " ")));
    tr.appendChild(el("td", item.frequency + "\u00d7"));
    tr.appendChild(el("td", (item.predicted_intent || "?") + (item.confidence != null ? " (" + Math.round(item.confidence * 100) + " %)" : "")));
    var cell = el("td"), input = el("input");
    input.value = item.suggested_intent || "";
    input.setAttribute("list", "intents");
    input.setAttribute("aria-label", "Intent for: " + item.text);
    cell.appendChild(input);
    tr.appendChild(cell);
    var actions = el("td");
    var accept = el("button", "Accept"), correct = el("button", "Save intent"), discard = el("button", "Discard");
    [accept, correct, discard].forEach(function (b) { b.type = "button"; });
    accept.addEventListener("click", function () { decide(item, "accept"); });
    correct.addEventListener("click", function () { decide(item, "correct", input.value.trim()); });
    discard.addEventListener("click", function () { decide(item, "discard"); });
    actions.append(accept, correct, discard);
    tr.appendChild(actions);
    return tr;
  }

  async function load() {
    try {
      var data = await api("GET", "/inbox");
      var body = $("items"); body.replaceChildren();
      data.items.forEach(function (item) { body.appendChild(row(item)); });
      var list = $("intents"); list.replaceChildren();
      data.intents.forEach(function (name) { var o = el("option"); o.value = name; list.appendChild(o); });
      $("count").textContent = "(" + data.items.length + ")";
    } catch (e) { status(e.message, false); }
  }

  $("freeze").addEventListener("click", async function () {
    try { var v = await api("POST", "/training-data/versions"); $("version").textContent = "Version " + v.version + ": " + v.examples + " examples, " + v.intents.length + " intents"; }
    catch (e) { status(e.message, false); }
  });
  $("yaml").addEventListener("click", async function (event) {
    event.preventDefault();
    var response = await fetch(base() + "/training-data.yml", { headers: admin.headers(state.token) });
    var blob = new Blob([await response.text()], { type: "application/x-yaml" });
    var link = el("a"); link.href = URL.createObjectURL(blob); link.download = state.tenant + "-accepted.yml"; link.click();
  });
  var state = admin.access(load);
  if (state.token) load();
})();
