// The admin overview: the tenant's assistant, its model, the embed snippet and the settings form.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var admin = window.SwitchboardAdmin, el = admin.el, status = admin.status;
  var current = null;

  function base() { return "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant); }

  async function load() {
    try {
      var data = await admin.request(state.token, base() + "/assistant", "GET");
      current = data.assistant;
      $("business").textContent = data.tenant.name;
      $("production").textContent = data.production ? "v" + data.production.version : "training… (not live yet)";
      $("snippet").textContent = data.embed_snippet || "no widget key: issue one first";
      ["overview", "embed", "settings-section"].forEach(function (id) { $(id).hidden = false; });
      if (!current) { status("No assistant yet: ask your operator to create one.", false); return; }
      var s = current.settings;
      $("assistant-name").textContent = s.assistant_name || ("the " + s.business_name + " assistant");
      $("revision").textContent = current.template + " · r" + current.revision;
      $("business_name").value = s.business_name;
      $("assistant_name").value = s.assistant_name || "";
      $("greeting").value = s.greeting || "";
      var skills = $("skills");
      skills.replaceChildren();
      Object.keys(data.skills).forEach(function (name) {
        var label = el("label");
        var box = el("input");
        box.type = "checkbox"; box.value = name; box.name = "skill";
        box.checked = s.skills ? s.skills.indexOf(name) >= 0 : current.template === "retail";
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + name + " "));
        label.appendChild(el("span", data.skills[name], "hint"));
        skills.appendChild(label);
        skills.appendChild(el("br"));
      });
      status("Signed in to " + data.tenant.name + ".", true);
      loadWidget();
      loadAgents();
    } catch (e) { status(e.message, false); }
  }

  async function loadWidget() {
    var w = await admin.request(state.token, base() + "/widget", "GET");
    $("w-title").value = w.title || "";
    $("w-accent").value = w.accent || "#2f5bea";
    $("w-position").value = w.position || "right";
    $("w-greeting").value = w.greeting || "";
    $("widget-section").hidden = false;
  }

  async function loadAgents() {
    var data = await admin.request(state.token, "/api/v1/agent/agents", "GET");
    var body = $("agents");
    body.replaceChildren();
    data.agents.forEach(function (a) {
      var row = el("tr");
      [a.display_name, a.email, a.role, (a.teams || []).join(", "), a.active ? a.status : "deactivated"].forEach(function (v) {
        row.appendChild(el("td", v));
      });
      body.appendChild(row);
    });
    $("agents-section").hidden = false;
  }

  $("widget").addEventListener("submit", async function (event) {
    event.preventDefault();
    try {
      await admin.request(state.token, base() + "/widget", "PUT", { title: $("w-title").value.trim(),
        accent: $("w-accent").value, position: $("w-position").value, greeting: $("w-greeting").value.trim() });
      status("Widget look saved: the next page load shows it.", true);
    } catch (e) { status(e.message, false); }
  });

  $("new-agent").addEventListener("submit", async function (event) {
    event.preventDefault();
    try {
      var agent = await admin.request(state.token, "/api/v1/agent/agents", "POST", {
        display_name: $("a-name").value.trim(), email: $("a-email").value.trim(), role: $("a-role").value,
        teams: $("a-teams").value.split(",").map(function (t) { return t.trim(); }).filter(Boolean),
        password: $("a-password").value });
      status(agent.email + " can now sign in.", true);
      $("new-agent").reset();
      loadAgents();
    } catch (e) { status(e.message, false); }
  });

  $("settings").addEventListener("submit", async function (event) {
    event.preventDefault();
    var s = Object.assign({}, current.settings);
    s.business_name = $("business_name").value.trim();
    s.assistant_name = $("assistant_name").value.trim() || null;
    s.greeting = $("greeting").value.trim() || null;
    s.skills = Array.prototype.map.call(document.querySelectorAll("input[name=skill]:checked"), function (b) { return b.value; });
    try {
      var saved = await admin.request(state.token, base() + "/assistant/settings", "PUT", s);
      await load();  // first: it writes its own status line
      status("Saved as revision " + saved.revision + ". Train to put it live.", true);
    } catch (e) { status(e.message, false); }
  });

  $("train").addEventListener("click", async function () {
    try {
      var run = await admin.request(state.token, base() + "/models/retrain", "POST", { promote: true });
      status("Training v" + run.version + "… see Models for its progress.", true);
    } catch (e) { status(e.message, false); }
  });

  var state = admin.access(load);
})();
