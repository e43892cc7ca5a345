// A dependency-free renderer of the relay's OpenAPI document: every route with
// its parameters, request body, responses and the schemas they reference.
"use strict";
(async () => {
  const root = document.getElementById("routes");
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  const schemas = (spec.components && spec.components.schemas) || {};
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };
  const refName = (s) => s && s.$ref ? s.$ref.split("/").pop() : null;
  const schemaBlock = (schema) => {
    const d = el("details");
    const name = refName(schema) || (schema && schema.type) || "schema";
    d.appendChild(el("summary", name));
    const resolved = refName(schema) ? schemas[refName(schema)] : schema;
    d.appendChild(el("pre", JSON.stringify(resolved, null, 2)));
    return d;
  };
  root.textContent = "";
  for (const [path, item] of Object.entries(spec.paths).sort()) {
    for (const [method, op] of Object.entries(item)) {
      const div = el("div", null, "route");
      const head = el("div");
      head.appendChild(el("span", method.toUpperCase(), "m"));
      head.appendChild(el("code", path));
      if (op.summary) head.appendChild(el("span", " — " + op.summary));
      div.appendChild(head);
      if (op.description) div.appendChild(el("p", op.description));
      if (op.security && op.security.length) div.appendChild(el("div", "Requires a bearer access token."));
      for (const p of op.parameters || []) div.appendChild(el("div", `parameter ${p.name} (${p.in})${p.required ? ", required" : ""}`));
      const body = op.requestBody && op.requestBody.content && Object.values(op.requestBody.content)[0];
      if (body) { div.appendChild(el("div", "Request body:")); div.appendChild(schemaBlock(body.schema)); }
      for (const [code, r] of Object.entries(op.responses || {})) {
        const c = r.content && Object.values(r.content)[0];
        div.appendChild(el("div", `${code}: ${r.description || ""}`));
        if (c && c.schema) div.appendChild(schemaBlock(c.schema));
      }
      root.appendChild(div);
    }
  }
})().catch((e) => { document.getElementById("routes").textContent = "Could not load /openapi.json: " + e; });
