// Knowledge-base admin page: every value from the server is inserted as text, never as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var admin = window.SwitchboardAdmin;

  function base() { return "/api/v1/admin/tenants/" + encodeURIComponent(state.tenant) + "/kb"; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text != null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function status(text, ok) { var s = $("status"); s.textContent = text; s.className = ok ? "ok" : "error"; }

  async function api(method, path, body) {
    await admin.opened(state);
    var response = await fetch(base() + path, { method: method, body: body, headers: admin.headers(state.token) });
    if (response.status === 204) return null;
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) throw new Error((data && data.detail) || ("HTTP " + response.status));
    return data;
  }

  async function refresh() {
    try {
      var data = await api("GET", "/documents");
      var body = $("documents");
      body.replaceChildren();
      data.documents.forEach(function (d) {
        var row = document.createElement("tr");
        row.appendChild(el("td", d.title));
        row.appendChild(el("td", d.source));
        row.appendChild(el("td", d.kind));
        row.appendChild(el("td", d.chunk_count));
        row.appendChild(el("td", new Date(d.updated_at).toLocaleString()));
        var cell = document.createElement("td");
        var del = el("button", "Delete");
        del.type = "button";
        del.setAttribute("aria-label", "Delete " + d.source);
        del.addEventListener("click", async function () {
          if (!confirm("Delete " + d.source + "?")) return;
          try { await api("DELETE", "/documents/" + encodeURIComponent(d.id)); status("Deleted " + d.source, true); refresh(); }
          catch (e) { status(e.message, false); }
        });
        cell.appendChild(del);
        row.appendChild(cell);
        body.appendChild(row);
      });
      $("doc-count").textContent = "(" + data.documents.length + ")";
      status("Tenant " + state.tenant + ": " + data.documents.length + " documents", true);
    } catch (e) { status(e.message, false); }
  }

  var state = admin.access(refresh);

  $("upload").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var list = $("upload-results");
    list.replaceChildren();
    var files = Array.prototype.slice.call($("files").files);
    for (var i = 0; i < files.length; i++) {
      var file = files[i];
      var item = el("li", file.name + ": uploading…");
      list.appendChild(item);
      try {
        var report = await api("PUT", "/documents/" + encodeURIComponent(file.name), file);
        item.textContent = file.name + ": " + report.status + " (" + report.chunks + " chunks)";
        item.className = "ok";
      } catch (e) { item.textContent = file.name + ": " + e.message; item.className = "error"; }
    }
    refresh();
  });

  $("reindex").addEventListener("click", async function () {
    try { var r = await api("POST", "/reindex"); status("Re-indexed " + r.chunks + " chunks", true); }
    catch (e) { status(e.message, false); }
  });

  $("search").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var results = $("results");
    results.replaceChildren();
    try {
      var data = await api("GET", "/search?k=5&q=" + encodeURIComponent($("query").value));
      $("verdict").textContent = (data.answerable ? "The bot would answer" : "The bot would say it does not know") +
        " (best similarity " + data.best_dense_score.toFixed(3) + ")";
      data.results.forEach(function (r) {
        var li = document.createElement("li");
        var title = r.url ? el("a", r.title) : el("strong", r.title);
        if (r.url && /^https?:\/\//i.test(r.url)) { title.href = r.url; title.rel = "noopener noreferrer"; title.target = "_blank"; }
        li.appendChild(title);
        li.appendChild(el("span", "  " + r.source + " · score " + r.score.toFixed(4), "hint"));
        li.appendChild(el("div", r.text, "passage"));
        results.appendChild(li);
      });
    } catch (e) { $("verdict").textContent = e.message; }
  });


})();
