// Agent console. Everything from the server is inserted with textContent: customer text never becomes HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var API = "/api/v1/agent";
  var state = { me: null, csrf: null, current: null, packet: null, queue: null, agents: [], teams: [], socket: null,
                retry: 500, typingTimer: null, typingSent: 0, refreshTimer: null };

  function el(tag, text, cls) { var e = document.createElement(tag); if (text != null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function showError(id, message) { $(id).textContent = message || ""; }
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    return s < 60 ? s + " s" : Math.round(s / 60) + " min";
  }

  async function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    var response = await fetch(API + path, { method: method, headers: headers, credentials: "same-origin",
                                            body: body === undefined ? undefined : JSON.stringify(body) });
    var data = await response.json().catch(function () { return {}; });
    if (response.status === 401) { showLogin(); }
    if (!response.ok) { var err = new Error(data.detail || ("HTTP " + response.status)); err.status = response.status; err.code = data.error; throw err; }
    return data;
  }

  function showLogin() {
    $("login-view").hidden = false; $("console-view").hidden = true; $("who").hidden = true;
    if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  }

  async function boot() {
    try { var me = await api("GET", "/me"); } catch (e) { showLogin(); return; }
    state.me = me.agent; state.csrf = me.csrf_token; state.teams = me.teams;
    $("login-view").hidden = true; $("console-view").hidden = false; $("who").hidden = false;
    $("agent-name").textContent = me.agent.display_name + " (" + me.agent.role + ")";
    $("admin-link").hidden = me.agent.role !== "admin";
    $("status-select").value = me.agent.status === "away" ? "away" : "online";
    var labels = $("resolve-label"); labels.replaceChildren();
    // No label is preselected: the agent chooses one (a default label mislabelled resolved chats).
    var pick = el("option", "Choose a label\u2026"); pick.value = ""; pick.disabled = true; pick.selected = true;
    labels.appendChild(pick);
    me.resolution_labels.forEach(function (l) { var o = el("option", l.replace(/_/g, " ")); o.value = l; labels.appendChild(o); });
    connect();
    await refreshAgents();
    await refreshQueue();
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent";
    var socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = function () { state.retry = 500; };
    socket.onmessage = function (ev) {
      var event; try { event = JSON.parse(ev.data); } catch (e) { return; }
      if (event.type === "message" && state.current === event.conversation_id) { appendMessage(event.message); }
      if (event.type === "note" && state.current === event.conversation_id) { addNote(event.note); }
      if (event.type === "handoff" && state.current === event.handoff.conversation_id) { openConversation(state.current); }
      if (event.type === "handoff" || event.type === "queue_changed" || event.type === "message") { scheduleRefresh(); }
    };
    socket.onclose = function (ev) {
      if (ev.code === 4401) { showLogin(); return; }
      setTimeout(connect, state.retry); state.retry = Math.min(state.retry * 2, 15000);
    };
  }

  function scheduleRefresh() {
    if (state.refreshTimer) return;
    state.refreshTimer = setTimeout(function () { state.refreshTimer = null; refreshQueue(); }, 150);
  }

  async function refreshAgents() {
    var data = await api("GET", "/agents");
    state.agents = data.agents;
    var select = $("transfer-target"); select.replaceChildren();
    state.teams.forEach(function (t) { var o = el("option", "Team: " + t); o.value = "team:" + t; select.appendChild(o); });
    data.agents.filter(function (a) { return a.id !== state.me.id && a.active; }).forEach(function (a) {
      var o = el("option", a.display_name + " (" + a.status + ", " + a.load + "/" + a.capacity + ")"); o.value = "agent:" + a.id; select.appendChild(o);
    });
  }

  function queueItem(h, meta) {
    var li = document.createElement("li");
    var b = el("button", null, h.priority >= 2 ? "prio-high" : "");
    b.type = "button";
    b.dataset.conversation = h.conversation_id;
    var name = (h.customer && (h.customer.name || h.customer.email)) || ("Customer " + h.conversation_id.slice(0, 8));
    b.appendChild(el("strong", name));
    b.appendChild(el("span", meta, "meta"));
    if (state.current === h.conversation_id) b.setAttribute("aria-current", "true");
    b.addEventListener("click", function () { openConversation(h.conversation_id); });
    li.appendChild(b);
    return li;
  }

  async function refreshQueue() {
    var data; try { data = await api("GET", "/queue"); } catch (e) { return; }
    state.queue = data;
    var waiting = $("waiting"); waiting.replaceChildren();
    data.waiting.forEach(function (h) {
      waiting.appendChild(queueItem(h, "#" + h.position + " · " + h.trigger.replace(/_/g, " ") + " · " + (h.team || "any team") + " · waiting " + ago(h.queued_at) + (h.left_message ? " · left a message" : "")));
    });
    $("waiting-count").textContent = data.waiting.length;
    var mine = $("mine"), others = $("others"); mine.replaceChildren(); others.replaceChildren();
    data.active.forEach(function (h) {
      (h.mine ? mine : others).appendChild(queueItem(h, h.state + " · " + (h.agent_name || "") + " · " + h.trigger.replace(/_/g, " ")));
    });
  }

  function senderLabel(m) {
    if (m.sender === "agent") return (m.payload && m.payload.agent && m.payload.agent.name) || "Agent";
    return { customer: "Customer", bot: "Bot", system: "System" }[m.sender] || m.sender;
  }

  function appendMessage(m) {
    var list = $("transcript");
    if (list.querySelector('[data-id="' + Number(m.id) + '"]')) return;
    var li = el("li", null, m.sender);
    li.dataset.id = Number(m.id);
    li.appendChild(el("span", senderLabel(m) + " · " + new Date(m.created_at).toLocaleTimeString(), "who"));
    var text = m.text || "";
    var citations = (m.payload && Array.isArray(m.payload.citations)) ? m.payload.citations.filter(function (c) { return c && typeof c.title === "string"; }) : [];
    citations.forEach(function (c) { text = text.replace("\n\nSource: " + c.title + " \u2013 " + c.url, "").replace("\n\nSource: " + c.title, ""); });
    li.appendChild(document.createTextNode(text));
    if (citations.length) {
      var sources = el("span", null, "sources");
      sources.appendChild(document.createTextNode(citations.length > 1 ? "Sources: " : "Source: "));
      citations.forEach(function (c, i) {
        if (i) sources.appendChild(document.createTextNode(", "));
        if (typeof c.url === "string" && /^https?:\/\//.test(c.url)) {
          var a = el("a", c.title); a.href = c.url; a.target = "_blank"; a.rel = "noopener noreferrer"; sources.appendChild(a);
        } else sources.appendChild(document.createTextNode(c.title));
      });
      li.appendChild(sources);
    }
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function addNote(n) {
    var author = state.agents.find(function (a) { return a.id === n.agent_id; });
    $("notes").appendChild(el("li", (author ? author.display_name + ": " : "") + n.text));
  }

  async function openConversation(conversationId) {
    state.current = conversationId;
    var packet; try { packet = await api("GET", "/conversations/" + encodeURIComponent(conversationId)); } catch (e) { showError("action-error", e.message); return; }
    if (state.current !== conversationId) return;
    state.packet = packet;
    $("empty").hidden = true; $("thread-view").hidden = false; $("context-view").hidden = false;
    var c = packet.conversation, h = packet.handoff;
    $("thread-title").textContent = ((c.customer && (c.customer.name || c.customer.email)) || "Customer") + " · " + c.channel;
    var st = h && ["queued", "assigned", "human"].indexOf(h.state) >= 0 ? h.state : "with the bot";
    $("thread-state").textContent = st;
    var mine = !!(h && h.agent_id === state.me.id && (h.state === "assigned" || h.state === "human"));
    $("claim").hidden = !(h && h.state === "queued");
    $("reply-form").hidden = !mine; $("transfer-form").hidden = !(mine || (h && state.me.role !== "agent" && h.state !== "resolved"));
    $("resolve-form").hidden = $("transfer-form").hidden;
    var list = $("transcript"); list.replaceChildren(); packet.transcript.forEach(appendMessage);
    var esc = packet.escalation;
    $("escalation").textContent = esc ? esc.trigger.replace(/_/g, " ") + " · team " + (esc.team || "any") + " · priority " + esc.priority : "Not escalated";
    var dl = $("customer"); dl.replaceChildren();
    Object.entries(c.customer || {}).forEach(function (kv) { dl.appendChild(el("dt", kv[0])); dl.appendChild(el("dd", kv[1])); });
    if (!c.customer) dl.appendChild(el("dd", "No details from the host page."));
    var trail = $("trail"); trail.replaceChildren();
    packet.intent_trail.forEach(function (t) {
      var li = el("li", (t.intent || "?") + " (" + Math.round((t.confidence || 0) * 100) + "%) · ");
      li.appendChild(el("span", t.sentiment || "?", t.sentiment === "negative" ? "neg" : ""));
      li.title = t.text || ""; trail.appendChild(li);
    });
    var kb = $("kb-answers"); kb.replaceChildren();
    packet.kb_answers.forEach(function (a) {
      var li = document.createElement("li");
      if (a.url && /^https?:\/\//i.test(a.url)) { var link = el("a", a.title); link.href = a.url; link.target = "_blank"; link.rel = "noopener noreferrer"; li.appendChild(link); }
      else li.textContent = a.title;
      kb.appendChild(li);
    });
    if (!packet.kb_answers.length) kb.appendChild(el("li", "None"));
    $("notes").replaceChildren(); packet.notes.forEach(addNote);
    var tr = $("transitions"); tr.replaceChildren();
    packet.transitions.forEach(function (t) { tr.appendChild(el("li", new Date(t.created_at).toLocaleTimeString() + " " + t.from + " → " + t.to + " (" + t.reason.replace(/_/g, " ") + ", " + t.actor.split(":")[0] + ")")); });
    showError("action-error", "");
    scheduleRefresh();
  }

  async function act(fn) {
    try { showError("action-error", ""); await fn(); }
    catch (e) { showError("action-error", e.message); }
    if (state.current) openConversation(state.current);
  }

  $("login-form").addEventListener("submit", async function (ev) {
    ev.preventDefault(); showError("login-error", "");
    try {
      var data = await api("POST", "/login", { tenant: $("login-tenant").value.trim(), email: $("login-email").value.trim(), password: $("login-password").value });
      state.csrf = data.csrf_token; $("login-password").value = ""; boot();
    } catch (e) { showError("login-error", e.message); }
  });
  $("logout").addEventListener("click", async function () { try { await api("POST", "/logout", {}); } catch (e) { /* already out */ } showLogin(); });
  $("status-select").addEventListener("change", function () { api("PUT", "/me/status", { status: $("status-select").value }); });
  $("claim").addEventListener("click", function () {
    act(async function () {
      try { await api("POST", "/handoffs/" + encodeURIComponent(state.packet.handoff.id) + "/claim", {}); }
      catch (e) { if (e.status === 409) throw new Error("Someone else claimed this conversation first."); throw e; }
    });
  });
  function sendReply() {
    var text = $("reply-text").value;
    if (!text.trim()) return;
    $("reply-text").value = "";
    act(async function () {
      await api("POST", "/conversations/" + encodeURIComponent(state.current) + "/messages", { text: text });
      state.typingSent = 0;
    });
  }
  $("reply-form").addEventListener("submit", function (ev) { ev.preventDefault(); sendReply(); });
  $("reply-text").addEventListener("keydown", function (ev) { if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); sendReply(); } });
  $("reply-text").addEventListener("input", function () {
    var id = state.current; if (!id) return;
    if (Date.now() - state.typingSent > 2500) { state.typingSent = Date.now(); api("POST", "/conversations/" + encodeURIComponent(id) + "/typing", { on: true }).catch(function () {}); }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(function () { state.typingSent = 0; api("POST", "/conversations/" + encodeURIComponent(id) + "/typing", { on: false }).catch(function () {}); }, 3000);
  });
  $("note-form").addEventListener("submit", function (ev) {
    ev.preventDefault(); var text = $("note-text").value; if (!text.trim()) return; $("note-text").value = "";
    act(function () { return api("POST", "/conversations/" + encodeURIComponent(state.current) + "/notes", { text: text }); });
  });
  $("transfer-form").addEventListener("submit", function (ev) {
    ev.preventDefault(); var target = $("transfer-target").value; var body = target.indexOf("team:") === 0 ? { to_team: target.slice(5) } : { to_agent: target.slice(6) };
    act(function () { return api("POST", "/handoffs/" + encodeURIComponent(state.packet.handoff.id) + "/transfer", body); });
  });
  $("resolve-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var label = $("resolve-label").value;
    if (!label) { showError("action-error", "Choose a resolution label first."); $("resolve-label").focus(); return; }
    act(function () { return api("POST", "/handoffs/" + encodeURIComponent(state.packet.handoff.id) + "/resolve", { label: label, note: $("resolve-note").value || null }); });
    $("resolve-note").value = ""; $("resolve-label").value = "";
  });
  setInterval(function () { if (state.queue) refreshQueue(); }, 15000);  // waiting times tick
  boot();
})();
