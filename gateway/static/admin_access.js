// Shared by the admin pages: the access form (tenant + admin token, kept for this browser tab),
// text-only element creation, the status line and JSON calls of the admin API.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  window.SwitchboardAdmin = {
    el: function (tag, text) { var e = document.createElement(tag); if (text != null) e.textContent = String(text); return e; },
    status: function (text, ok) { var s = $("status"); s.textContent = text; s.className = ok ? "ok" : "error"; },
    // JSON call of the admin API with the tab's token; rejects with the API's own error detail.
    request: async function (token, url, method, body) {
      var response = await fetch(url, { method: method, body: body ? JSON.stringify(body) : undefined,
        headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" } });
      var data = await response.json().catch(function () { return {}; });
      if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
      return data;
    },
    // Fills the form from the tab's storage and calls onOpen after each submit; returns the live state.
    access: function (onOpen) {
      var state = { tenant: sessionStorage.getItem("sb-tenant") || "northwind", token: sessionStorage.getItem("sb-admin-token") || "" };
      $("tenant").value = state.tenant;
      $("token").value = state.token;
      $("access").addEventListener("submit", function (event) {
        event.preventDefault();
        state.tenant = $("tenant").value.trim();
        state.token = $("token").value;
        sessionStorage.setItem("sb-tenant", state.tenant);
        sessionStorage.setItem("sb-admin-token", state.token);
        onOpen();
      });
      return state;
    }
  };
})();
