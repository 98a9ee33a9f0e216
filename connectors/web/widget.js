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
  // The look comes from the tenant's settings (session frame), cached for the next page load.
  var cachedConfig = {};
  try { cachedConfig = JSON.parse(localStorage.getItem("switchboard-config:" + widgetKey) || "{}"); } catch (e) { cachedConfig = {}; }
  var title = cachedConfig.title || "Support";
  var accent = cachedConfig.accent || "#2f5bea";
  var config = cachedConfig;
  // Optional customer details from the host page (shown to agents; never used for authentication).
  var customer = {};
  ["name", "email", "plan", "id"].forEach(function (field) {
    var value = script.getAttribute("data-customer-" + field);
    if (value) customer[field] = value.slice(0, 200);
  });

  var CSS = [
    ":host { all: initial; }",
    ".sb { position: fixed; bottom: 20px; right: 20px; display: flex; flex-direction: column; align-items: flex-end; z-index: 2147483000; font: 14px/1.45 system-ui, sans-serif; color: #1d2433; }",
    ".sb.left { right: auto; left: 20px; align-items: flex-start; }",
    ".sb-launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--accent); color: var(--on-accent); cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); display: flex; align-items: center; justify-content: center; padding: 0; }",
    ".sb-launcher svg { width: 26px; height: 26px; display: block; }",
    ".sb-launcher:focus-visible, .sb button:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }",
    // The message box is focused on opening: its focus shows as the form's accent top line, not a yellow bar.
    ".sb-form textarea:focus { outline: none; }",
    ".sb-form:focus-within { border-top-color: var(--accent); box-shadow: inset 0 1px 0 var(--accent); }",
    ".sb-panel { display: none; flex-direction: column; width: 360px; max-width: calc(100vw - 24px); height: 520px; max-height: calc(100vh - 100px); background: #fff; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; margin-bottom: 12px; }",
    ".sb.open .sb-panel { display: flex; }",
    ".sb-header { background: var(--accent); color: var(--on-accent); padding: 12px 14px; display: flex; align-items: center; gap: 8px; }",
    ".sb-header h2 { font-size: 15px; margin: 0; flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }",
    ".sb-header button { background: transparent; border: 0; color: inherit; cursor: pointer; font-size: 13px; white-space: nowrap; flex: none; }",
    ".sb-avatar { width: 28px; height: 28px; border-radius: 50%; background: rgba(255,255,255,.25); display: none; align-items: center; justify-content: center; font-size: 13px; font-weight: 600; }",
    ".sb-avatar.on { display: flex; }",
    ".sb-status { font-size: 12px; opacity: .85; max-width: 35%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }",
    ".sb-log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; background: #f6f7fb; }",
    ".sb-msg { max-width: 80%; padding: 8px 11px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }",
    ".sb-msg.customer { align-self: flex-end; background: var(--accent); color: var(--on-accent); border-bottom-right-radius: 4px; }",
    ".sb-msg.customer a { color: inherit; }",
    ".sb-msg ul { margin: 4px 0; padding-left: 18px; white-space: normal; }",
    ".sb-msg code { background: rgba(0,0,0,.07); padding: 0 3px; border-radius: 3px; }",
    ".sb-sources { display: block; margin-top: 6px; font-size: 12px; white-space: normal; }",
    ".sb-greeting { align-self: flex-start; color: #4a5266; font-size: 13px; }",
    ".sb-csat { align-self: flex-start; background: #fff; border: 1px solid #e1e4ee; border-radius: 12px; padding: 8px 11px; }",
    ".sb-csat p { margin: 0 0 6px; }",
    ".sb-csat button { border: 1px solid #c9cede; background: #fff; border-radius: 6px; margin-right: 4px; padding: 3px 8px; cursor: pointer; }",
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
    ".sb-form button { border: 0; background: var(--accent); color: var(--on-accent); padding: 0 16px; cursor: pointer; }",
    "@media (max-width: 480px) { .sb, .sb.left { right: 8px; left: auto; bottom: 8px; } .sb-panel { width: calc(100vw - 16px); height: calc(100vh - 90px); } }"
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
  var rated = {};           // handoff ids the customer already rated (CSAT)
  var stopped = false;      // the gateway refused this page for good (bad key or origin)

  function saveSession() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ conversation_id: session.id, conversation_token: session.token }));
    } catch (e) { /* storage may be disabled: the conversation then lasts as long as the page */ }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var bubble = document.createElementNS(ns, "path");
    bubble.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    bubble.setAttribute("fill", "currentColor");
    svg.appendChild(bubble);
    [8, 12, 16].forEach(function (x) {
      var dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", String(x));
      dot.setAttribute("cy", "11");
      dot.setAttribute("r", "1.4");
      dot.style.fill = "var(--accent)";
      svg.appendChild(dot);
    });
    return svg;
  }

  // ---- DOM ---------------------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "switchboard-widget";
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = CSS;
  root.appendChild(style);

  var shell = el("div", "sb");
  var panel = el("section", "sb-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title + " chat");
  var header = el("div", "sb-header");
  var avatar = el("span", "sb-avatar");
  avatar.setAttribute("aria-hidden", "true");
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
  header.append(avatar, heading, status, restart, close);

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
  launcher.appendChild(chatIcon());  // an inline SVG: no emoji font or third-party request needed
  shell.append(panel, launcher);
  root.appendChild(shell);
  log.appendChild(typing);

  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  // Tenant look: colours only as validated #rrggbb, text only as text.
  function applyConfig(next) {
    config = next || {};
    var hex = /^#[0-9a-fA-F]{6}$/;
    shell.style.setProperty("--accent", hex.test(config.accent) ? config.accent : "#2f5bea");
    shell.style.setProperty("--on-accent", hex.test(config.text_on_accent) ? config.text_on_accent : "#ffffff");
    shell.classList.toggle("left", config.position === "left");
    var name = typeof config.title === "string" && config.title ? config.title : "Support";
    heading.textContent = name;
    panel.setAttribute("aria-label", name + " chat");
    avatar.textContent = typeof config.avatar === "string" ? config.avatar : "";
    avatar.classList.toggle("on", !!avatar.textContent);
    try { localStorage.setItem("switchboard-config:" + widgetKey, JSON.stringify(config)); } catch (e) { /* optional */ }
  }
  applyConfig(cachedConfig);

  function setOpen(open) {
    shell.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (open) input.focus();
  }

  function makeLink(href, label) {
    var link = document.createElement("a");
    link.href = href;          // only ever an http(s) URL: the patterns below admit nothing else
    link.textContent = label;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    return link;
  }

  // Inline formatting → nodes: [label](https://…), bare http(s) links, **bold**, *italic* / _italic_,
  // `code`. Everything else stays text; no markup from a message is ever parsed as HTML.
  var INLINE = /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s)<>"']+)\)|(https?:\/\/[^\s<>"']+)|\*\*([^*\n]+)\*\*|(?:\*([^*\n]+)\*|\b_([^_\n]+)_\b)|`([^`\n]+)`/g;
  function renderInline(target, text) {
    var last = 0, match;
    INLINE.lastIndex = 0;
    while ((match = INLINE.exec(text)) !== null) {
      if (match.index > last) target.appendChild(document.createTextNode(text.slice(last, match.index)));
      var node;
      if (match[1]) node = makeLink(match[2], match[1]);
      else if (match[3]) node = makeLink(match[3], match[3]);
      else if (match[4]) { node = document.createElement("strong"); node.textContent = match[4]; }
      else if (match[5] || match[6]) { node = document.createElement("em"); node.textContent = match[5] || match[6]; }
      else { node = document.createElement("code"); node.textContent = match[7]; }
      target.appendChild(node);
      last = match.index + match[0].length;
    }
    if (last < text.length) target.appendChild(document.createTextNode(text.slice(last)));
  }

  // Lines starting with "- " or "* " become a list; other lines stay as they are.
  function renderText(target, text) {
    var lines = text.split("\n"), list = null;
    lines.forEach(function (line, i) {
      var item = /^\s*[-*\u2022]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) { list = document.createElement("ul"); target.appendChild(list); }
        var li = document.createElement("li");
        renderInline(li, item[1]);
        list.appendChild(li);
        return;
      }
      list = null;
      renderInline(target, line);
      if (i < lines.length - 1 && !(lines[i + 1] && /^\s*[-*\u2022]\s+/.test(lines[i + 1]))) {
        target.appendChild(document.createTextNode("\n"));
      }
    });
  }

  function citationsOf(message) {
    var custom = message.payload && message.payload.custom;
    var list = custom && custom.kb && custom.kb.citations;
    return Array.isArray(list) ? list.filter(function (c) { return c && typeof c.title === "string"; }) : [];
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
    if (opts && opts.citations && opts.citations.length) {
      var sources = el("span", "sb-sources");
      sources.appendChild(document.createTextNode(opts.citations.length > 1 ? "Sources: " : "Source: "));
      opts.citations.forEach(function (c, i) {
        if (i) sources.appendChild(document.createTextNode(", "));
        if (typeof c.url === "string" && /^https?:\/\//.test(c.url)) sources.appendChild(makeLink(c.url, c.title));
        else sources.appendChild(document.createTextNode(c.title));
      });
      bubble.appendChild(sources);
    }
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
    var citations = citationsOf(message);
    if (typeof text === "string") {
      // The citation is shown as a link under the answer; drop its plain-text copy.
      citations.forEach(function (c) { text = text.replace("\n\nSource: " + c.title + " \u2013 " + c.url, "").replace("\n\nSource: " + c.title, ""); });
    }
    var opts = { citations: citations };
    if (agent) opts.who = String(agent.name || "Agent") + " \u00b7 support team";
    if (text) addBubble(message.sender, text, opts);
    var buttons = message.payload && message.payload.buttons;
    if (isLatest && Array.isArray(buttons) && buttons.length) addButtons(buttons);
    var csat = message.payload && message.payload.csat;
    if (csat && typeof csat.handoff_id === "string" && config.csat_enabled !== false && !rated[csat.handoff_id]) {
      addCsat(csat.handoff_id);
    }
  }

  // "How did we do?" after people resolved the conversation: five buttons, one click.
  function addCsat(handoffId) {
    var box = el("div", "sb-csat");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Rate the help you got");
    var question = el("p");
    question.textContent = "How did we do?";
    box.appendChild(question);
    [1, 2, 3, 4, 5].forEach(function (score) {
      var b = el("button");
      b.type = "button";
      b.textContent = "\u2605".repeat(score);
      b.setAttribute("aria-label", score + " out of 5");
      b.setAttribute("data-score", String(score));
      b.addEventListener("click", function () {
        rated[handoffId] = true;
        if (socket && ready) socket.send(JSON.stringify({ type: "csat", handoff_id: handoffId, score: score }));
        box.textContent = "";
        var thanks = el("p");
        thanks.textContent = "Thanks for your rating!";
        box.appendChild(thanks);
      });
      box.appendChild(b);
    });
    log.insertBefore(box, typing);
    log.scrollTop = log.scrollHeight;
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
      if (event.code === 4401 || event.code === 4403) { stopped = true; setStatus("unavailable"); return; }
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
      if (frame.config) applyConfig(frame.config);
      (frame.rated || []).forEach(function (id) { rated[id] = true; });
      var history = frame.history || [];
      if (!history.length && config.greeting && !log.querySelector(".sb-greeting")) {
        var greeting = el("div", "sb-greeting");
        greeting.textContent = String(config.greeting);
        log.insertBefore(greeting, typing);
      }
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
    } else if (frame.type === "error" && frame.error === "rate_limited" && frame.client_id) {
      // Kept in the outbox: sent again, in order, once the limit allows.
      setStatus("sending shortly\u2026");
      setTimeout(function () { setStatus("online"); flush(); }, Math.max(1, frame.retry_after_s || 1) * 1000);
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
    if (stopped) { addBubble("system", "The chat is not available on this page."); return; }
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
