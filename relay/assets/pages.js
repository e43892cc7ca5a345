// Shared by the relay's small pages. The token travels in the URL fragment
// (#token=...), which browsers never send to a server or put in logs.
"use strict";
function sottoToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("token") || "";
}
function sottoStatus(text, ok) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = ok ? "ok" : "err";
}
async function sottoPost(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let problem = null;
  if (!res.ok) {
    try { problem = await res.json(); } catch (_) { /* not JSON */ }
  }
  return { ok: res.ok, status: res.status, problem };
}
