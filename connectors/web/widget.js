/*
 * Switchboard chat widget. Embed with one tag:
 *   <script src="https://GATEWAY/widget.js" data-widget-key="wk_..." defer></script>
 * No build step, no third-party requests. Everything renders inside an open shadow root, and
 * message text is only ever inserted with textContent (links are built as elements), so no
 * HTML from a message is ever interpreted.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector("script[data-widget-key]");
  if (!script) return;
  var widgetKey = script.getAttribute("data-widget-key") || "";
  var gatewayOrigin = new URL(script.src, location.href).origin;
  var storageKey = "switchboard:" + widgetKey;
  var title = script.getAttribute("data-title") || "Support";
  var accent = script.getAttribute("data-accent") || "#2f5bea";
  // Optional customer details from the host page (shown to agents; never used for authentication).
  var customer = {};
  ["name", "email", "plan", "id"].forEach(function (field) {
    var value = script.getAttribute("data-customer-" + field);
    if (value) customer[field] = value.slice(0, 200);
  });

  var CSS = [
    ":host { all: initial; }",
    ".sb { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; font: 14px/1.45 system-ui, sans-serif; color: #1d2433; }",
    ".sb-launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--accent); color: #fff; font-size: 24px; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".sb-launcher:focus-visible, .sb button:focus-visible, .sb textarea:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }",
    ".sb-panel { display: none; flex-direction: column; width: 360px; max-width: calc(100vw - 24px); height: 520px; max-height: calc(100vh - 100px); background: #fff; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; margin-bottom: 12px; }",
    ".sb.open .sb-panel { display: flex; }",
    ".sb-header { background: var(--accent); color: #fff; padding: 12px 14px; display: flex; align-items: center; gap: 8px; }",
    ".sb-header h2 { font-size: 15px; margin: 0; flex: 1; }",
    ".sb-header button { background: transparent; border: 0; color: #fff; cursor: pointer; font-size: 13px; }",
    ".sb-status { font-size: 12px; opacity: .85; }",
    ".sb-log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; background: #f6f7fb; }",
    ".sb-msg { max-width: 80%; padding: 8px 11px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }",
    ".sb-msg.customer { align-self: flex-end; background: var(--accent); color: #fff; border-bottom-right-radius: 4px; }",
    ".sb-msg.customer a { color: #fff; }",
    ".sb-msg.bot, .sb-msg.agent, .sb-msg.system { align-self: flex-start; background: #fff; border: 1px solid #e1e4ee; border-bottom-left-radius: 4px; }",
    ".sb-msg.system { font-style: italic; }",
    ".sb-msg.agent { border-color: #1f8a4c; border-width: 1px 1px 1px 4px; }",
    ".sb-who { display: block; font-size: 11px; font-weight: 600; color: #1f8a4c; margin-bottom: 2px; font-style: normal; }",
    ".sb-msg.pending { opacity: .6; }",
    ".sb-buttons { display: flex; flex-wrap: wrap; gap: 6px; align-self: flex-start; }",
    ".sb-buttons button { border: 1px solid var(--accent); color: var(--accent); background: #fff; border-radius: 16px; padding: 5px 12px; cursor: pointer; }",
    ".sb-typing { align-self: flex-start; color: #6b7385; font-size: 12px; display: none; }",
    ".sb-typing.on { display: block; }",
    ".sb-form { display: flex; border-top: 1px solid #e1e4ee; }",
    ".sb-form textarea { flex: 1; border: 0; resize: none; padding: 10px; font: inherit; height: 44px; }",
    ".sb-form button { border: 0; background: var(--accent); color: #fff; padding: 0 16px; cursor: pointer; }",
    "@media (max-width: 480px) { .sb { right: 8px; bottom: 8px; } .sb-panel { width: calc(100vw - 16px); height: calc(100vh - 90px); } }"
  ].join("\n");

  // ---- state -------------------------------------------------------------------------------
  var stored = {};
  try { stored = JSON.parse(localStorage.getItem(storageKey) || "{}"); } catch (e) { stored = {}; }
  var session = { id: stored.conversation_id || null, token: stored.conversation_token || null };
  var outbox = [];          // customer messages not yet acknowledged, in send order
  var socket = null;
  var ready = false;        // session frame received on the current socket
  var attempts = 0;
  var seen = {};            // message ids already rendered

  function saveSession() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ conversation_id: session.id, conversation_token: session.token }));
    } catch (e) { /* storage may be disabled: the conversation then lasts as long as the page */ }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  // ---- DOM ---------------------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "switchboard-widget";
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);

  var shell = el("div", "sb");
  shell.style.setProperty("--accent", /^#[0-9a-fA-F]{3,8}$/.test(accent) ? accent : "#2f5bea");
  var panel = el("section", "sb-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title + " chat");
  var header = el("div", "sb-header");
  var heading = el("h2");
  heading.textContent = title;
  var status = el("span", "sb-status");
  status.setAttribute("aria-live", "polite");
  var restart = el("button", "sb-restart");
  restart.type = "button";
  restart.textContent = "New conversation";
  var close = el("button", "sb-close");
  close.type = "button";
  close.setAttribute("aria-label", "Close chat");
  close.textContent = "\u2715";
  header.append(heading, status, restart, close);

  var log = el("div", "sb-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Conversation");
  var typing = el("div", "sb-typing");
  typing.textContent = "typing\u2026";

  var form = el("form", "sb-form");
  var input = el("textarea", "sb-input");
  input.setAttribute("aria-label", "Type your message");
  input.placeholder = "Type your message\u2026";
  input.maxLength = 4000;
  var send = el("button", "sb-send");
  send.type = "submit";
  send.textContent = "Send";
  form.append(input, send);
  panel.append(header, log, form);

  var launcher = el("button", "sb-launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Open chat");
  launcher.setAttribute("aria-expanded", "false");
  launcher.textContent = "\uD83D\uDCAC";
  shell.append(panel, launcher);
  root.appendChild(shell);
  log.appendChild(typing);

  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  function setOpen(open) {
    shell.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (open) input.focus();
  }

  // Text → nodes: http(s) links become anchors, everything else stays text.
  function renderText(target, text) {
    var pattern = /https?:\/\/[^\s<>"']+/g;
    var last = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) target.appendChild(document.createTextNode(text.slice(last, match.index)));
      var link = document.createElement("a");
      link.href = match[0];
      link.textContent = match[0];
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      target.appendChild(link);
      last = match.index + match[0].length;
    }
    if (last < text.length) target.appendChild(document.createTextNode(text.slice(last)));
  }

  function addBubble(sender, text, opts) {
    var bubble = el("div", "sb-msg " + (["customer", "bot", "agent", "system"].indexOf(sender) >= 0 ? sender : "bot"));
    if (opts && opts.pending) bubble.classList.add("pending");
    if (opts && opts.who) {
      var who = el("span", "sb-who");
      who.textContent = opts.who;
      bubble.appendChild(who);
    }
    if (opts && opts.clientId) bubble.setAttribute("data-client-id", opts.clientId);
    renderText(bubble, String(text || ""));
    log.insertBefore(bubble, typing);
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  function addButtons(buttons) {
    var row = el("div", "sb-buttons");
    buttons.forEach(function (b) {
      if (!b || typeof b.title !== "string") return;
      var button = el("button");
      button.type = "button";
      button.textContent = b.title;
      button.addEventListener("click", function () {
        row.remove();
        sendMessage(typeof b.payload === "string" && b.payload ? b.payload : b.title, b.title);
      });
      row.appendChild(button);
    });
    log.insertBefore(row, typing);
    log.scrollTop = log.scrollHeight;
  }

  function renderMessage(message, isLatest) {
    if (message.id != null) {
      if (seen[message.id]) return;
      seen[message.id] = true;
    }
    if (message.sender === "customer" && message.client_id) {
      var pending = log.querySelector('[data-client-id="' + cssEscape(message.client_id) + '"]');
      if (pending) { pending.classList.remove("pending"); return; }
    }
    var text = message.text;
    if (message.sender === "customer" && typeof text === "string" && text.charAt(0) === "/") {
      text = (message.payload && message.payload.title) || text;   // a button press shows its title
    }
    var agent = message.sender === "agent" && message.payload && message.payload.agent;
    if (text) addBubble(message.sender, text, agent ? { who: String(agent.name || "Agent") + " \u00b7 support team" } : null);
    var buttons = message.payload && message.payload.buttons;
    if (isLatest && Array.isArray(buttons) && buttons.length) addButtons(buttons);
  }

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
  }

  // ---- transport ---------------------------------------------------------------------------
  function setStatus(text) { status.textContent = text; }

  function connect() {
    var url = gatewayOrigin.replace(/^http/, "ws") + "/ws/widget?key=" + encodeURIComponent(widgetKey);
    ready = false;
    socket = new WebSocket(url);
    socket.onopen = function () {
      attempts = 0;
      socket.send(JSON.stringify({ type: "hello", conversation_id: session.id, conversation_token: session.token, customer: customer }));
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handleFrame(frame);
    };
    socket.onclose = function (event) {
      ready = false;
      if (event.code === 4401) { setStatus("unavailable"); return; }
      setStatus("reconnecting\u2026");
      var delay = Math.min(30000, 500 * Math.pow(2, attempts++)) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  function handleFrame(frame) {
    if (frame.type === "session") {
      if (frame.conversation_id !== session.id) {
        clearLog();
      }
      session.id = frame.conversation_id;
      session.token = frame.conversation_token;
      saveSession();
      var history = frame.history || [];
      history.forEach(function (m, i) { renderMessage(m, i === history.length - 1); });
      ready = true;
      showOwner({ state: frame.handoff_state || "bot" });
      flush();
    } else if (frame.type === "ack") {
      outbox = outbox.filter(function (item) { return item.client_id !== frame.client_id; });
      renderMessage(frame.message, false);
    } else if (frame.type === "message") {
      renderMessage(frame.message, true);
    } else if (frame.type === "typing") {
      typing.textContent = frame.who === "agent" && frame.name ? String(frame.name) + " is typing\u2026" : "typing\u2026";
      typing.classList.toggle("on", !!frame.on);
      log.scrollTop = log.scrollHeight;
    } else if (frame.type === "handoff") {
      showOwner(frame);
    } else if (frame.type === "error") {
      if (frame.client_id) {
        outbox = outbox.filter(function (item) { return item.client_id !== frame.client_id; });
        var pending = log.querySelector('[data-client-id="' + cssEscape(frame.client_id) + '"]');
        if (pending) pending.remove();
      }
      addBubble("system", frame.detail || "Something went wrong.");
    }
  }

  // Who the customer is talking to: the assistant, the queue (place and wait) or a named person.
  function showOwner(frame) {
    if (frame.state === "queued") {
      var text = "waiting for a person";
      if (frame.position) text += " \u00b7 #" + frame.position + " in queue";
      if (frame.eta_s) text += " \u00b7 ~" + Math.max(1, Math.round(frame.eta_s / 60)) + " min";
      setStatus(text);
    } else if (frame.state === "assigned" || frame.state === "human") {
      setStatus(frame.agent ? "with " + String(frame.agent) : "with our team");
    } else {
      typing.classList.remove("on");
      setStatus("online");
    }
  }

  function flush() {
    if (!ready || !socket || socket.readyState !== WebSocket.OPEN) return;
    outbox.forEach(function (item) { socket.send(JSON.stringify(item)); });
  }

  function sendMessage(text, shownAs) {
    var clientId = newClientId();
    var item = { type: "message", text: text, client_id: clientId };
    if (shownAs) item.title = shownAs;
    outbox.push(item);
    addBubble("customer", shownAs || text, { pending: true, clientId: clientId });
    if (ready) socket.send(JSON.stringify(item));
  }

  function clearLog() {
    Array.prototype.slice.call(log.children).forEach(function (child) {
      if (child !== typing) child.remove();
    });
    seen = {};
  }

  // ---- events ------------------------------------------------------------------------------
  launcher.addEventListener("click", function () { setOpen(!shell.classList.contains("open")); });
  close.addEventListener("click", function () { setOpen(false); launcher.focus(); });
  restart.addEventListener("click", function () {
    session = { id: null, token: null };
    saveSession();
    clearLog();
    if (socket && ready) socket.send(JSON.stringify({ type: "hello" }));
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendMessage(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  function mount() {
    document.body.appendChild(host);
    if (session.id) setOpen(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
