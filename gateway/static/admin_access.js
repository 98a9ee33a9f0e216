// Shared by the admin pages: the tenant admin's session (the console's login), one navigation across
// the pages, text-only element creation, the status line and JSON calls of the tenant's admin API.
// The session cookie is HttpOnly; writes carry the session's CSRF token. The operator's platform token
// is not accepted here: it opens tenants and plans only.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var PAGES = [["/admin", "Overview"], ["/admin/kb", "Help centre"], ["/admin/inbox", "Review inbox"],
    ["/admin/models", "Models"], ["/admin/analytics", "Analytics"], ["/admin/usage", "Usage"],
    ["/console", "Agent console"]];
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text != null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function status(text, ok) { var s = $("status"); if (s) { s.textContent = text; s.className = ok ? "ok" : "error"; } }

  function navigation(me) {
    var nav = $("admin-nav");
    if (!nav) {
      nav = el("nav");
      nav.id = "admin-nav";
      nav.setAttribute("aria-label", "Admin pages");
      var header = document.querySelector("header") || document.body;
      header.appendChild(nav);
    }
    nav.replaceChildren();
    PAGES.forEach(function (page) {
      var a = el("a", page[1]);
      a.href = page[0];
      if (location.pathname === page[0]) a.setAttribute("aria-current", "page");
      nav.appendChild(a);
    });
    if (me) {
      var who = el("span", me.agent.display_name + " · " + me.tenant, "who");
      var out = el("button", "Log out");
      out.type = "button";
      out.addEventListener("click", async function () {
        await fetch("/api/v1/agent/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token } });
        location.reload();
      });
      nav.appendChild(who);
      nav.appendChild(out);
    }
  }

  function loginForm(form, message) {
    form.hidden = false;
    form.replaceChildren();
    var fields = [["login-tenant", "Business (tenant id)", "text", "organization"],
      ["login-email", "E-mail", "email", "username"], ["login-password", "Password", "password", "current-password"]];
    fields.forEach(function (f) {
      var label = el("label", f[1] + " ");
      var input = el("input");
      input.id = f[0]; input.type = f[2]; input.required = true; input.autocomplete = f[3];
      label.appendChild(input);
      form.appendChild(label);
    });
    var button = el("button", "Log in");
    button.type = "submit";
    form.appendChild(button);
    status(message, false);
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var response = await fetch("/api/v1/agent/login", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ tenant: $("login-tenant").value.trim(), email: $("login-email").value.trim(),
          password: $("login-password").value, available: false }) });
      if (response.ok) { location.reload(); return; }
      var data = await response.json().catch(function () { return {}; });
      status(data.detail || ("HTTP " + response.status), false);
    });
  }

  window.SwitchboardAdmin = {
    el: el,
    status: status,
    // Headers of a call of the admin API with the session (the cookie goes along on its own).
    headers: function (token, extra) {
      var h = { "X-CSRF-Token": token };
      Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
      return h;
    },
    // Resolves once the page's session is open; rejects when it is not (an action clicked before the
    // page read the session must not call /tenants//…).
    opened: async function (state) {
      if (!(await state.ready)) throw new Error("Log in with your admin account first.");
    },
    // JSON call of the admin API; rejects with the API's own error detail.
    request: async function (token, url, method, body) {
      var response = await fetch(url, { method: method, body: body ? JSON.stringify(body) : undefined,
        credentials: "same-origin", headers: { "X-CSRF-Token": token, "Content-Type": "application/json" } });
      var data = await response.json().catch(function () { return {}; });
      if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
      return data;
    },
    // Finds the signed-in admin (or shows the login form) and calls onOpen once the tenant is known.
    // Returns the live state: {tenant, token (the session's CSRF token), me, ready}. ``ready`` resolves
    // to whether the page is open, so an action clicked before the session was read waits for it
    // instead of calling the API without a tenant.
    access: function (onOpen) {
      var state = { tenant: "", token: "", me: null };
      var opened;
      state.ready = new Promise(function (resolve) { opened = resolve; });
      var form = $("access");
      navigation(null);
      fetch("/api/v1/agent/me", { credentials: "same-origin" }).then(async function (response) {
        if (!response.ok) { loginForm(form, "Log in with your admin account."); opened(false); return; }
        var me = await response.json();
        navigation(me);
        if (me.agent.role !== "admin") {
          if (form) form.hidden = true;
          status("Signed in as " + me.agent.email + ", who is not an admin of " + me.tenant + ".", false);
          opened(false);
          return;
        }
        if (form) form.hidden = true;
        state.tenant = me.tenant; state.token = me.csrf_token; state.me = me;
        opened(true);
        onOpen();
      }).catch(function () { status("The server did not answer; reload the page.", false); opened(false); });
      return state;
    }
  };
})();
