// graphfraud analyst workbench: cytoscape.js (vendored, see vendor/VERSIONS), no network beyond
// this server. Values arrive masked per role; node ids never carry a value.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const keyInput = $("key");
  keyInput.value = sessionStorage.getItem("gf-key") || "";

  let VOCAB = null; // GET /v1/vocabulary: identifier kinds, link colours, reason wording
  let WHO = null; // GET /v1/whoami: role and permissions
  let KIND_COLOUR = {}; // identifier kind and link kind -> legend colour
  let KIND_LABEL = {};
  let REASON_TEXT = {};
  let cy = null;
  let current = null; // { userId, ringId, drawn }
  let picked = []; // the last two user ids clicked, for "why linked"
  const hidden = new Set(); // link kinds filtered out

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(id) { const n = $(id); n.textContent = ""; return n; }
  function status(msg, kind) { const box = $("status"); box.textContent = msg || ""; box.className = kind || ""; }
  function fmt(x) {
    if (x === null || x === undefined) return "—";
    return typeof x === "number" && !Number.isInteger(x) ? x.toFixed(2) : String(x);
  }

  async function api(path, options) {
    sessionStorage.setItem("gf-key", keyInput.value);
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ "X-API-Key": keyInput.value }, opts.headers);
    const res = await fetch(path, opts);
    const body = await res.json().catch(() => ({ error: "bad_response", detail: res.statusText }));
    if (!res.ok) {
      const err = new Error(`${res.status} ${body.error || ""}: ${body.detail || ""}${body.hint ? " — " + body.hint : ""}`);
      err.status = res.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  async function vocabulary() {
    if (VOCAB) return;
    VOCAB = await api("/v1/vocabulary");
    for (const kind of VOCAB.identifiers) {
      KIND_LABEL[kind.name] = kind.label;
      for (const link of kind.links) KIND_COLOUR[link.kind] = link.colour;
      const exact = kind.links.find((l) => l.kind === kind.name);
      KIND_COLOUR[kind.name] = exact ? exact.colour : (kind.links[0] || {}).colour || "#868e96";
    }
    REASON_TEXT = Object.fromEntries(VOCAB.reasons.map((r) => [r.code, r.text]));
    WHO = await api("/v1/whoami");
    $("whoami").textContent = `role ${WHO.role}${WHO.permissions.includes("unmasked_pii") ? "" : " · PII masked"}`;
  }

  function riskColour(s) {
    if (s === null || s === undefined) return "#ced4da";
    const r = Math.round(60 + 195 * s), g = Math.round(170 - 130 * s), b = Math.round(90 - 50 * s);
    return `rgb(${r},${g},${b})`;
  }

  // ---- graph ----------------------------------------------------------------------------------
  const STYLESHEET = [
    { selector: "node[type = 'user']", css: {
      "background-color": "data(colour)", label: "data(name)", "font-size": 9, "min-zoomed-font-size": 8, "text-valign": "bottom",
      "text-margin-y": 3, width: 18, height: 18, "border-width": 1, "border-color": "#1d2430" } },
    { selector: "node[type = 'user'][?outside]", css: { "border-style": "dashed", opacity: 0.8 } },
    { selector: "node[type = 'user'][?focus]", css: { "border-width": 4, width: 26, height: 26 } },
    { selector: "node[type = 'identifier']", css: {
      shape: "round-rectangle", "background-color": "data(colour)", label: "data(name)", "font-size": 8, "min-zoomed-font-size": 10,
      "text-valign": "top", "text-margin-y": -2, width: "data(size)", height: "data(size)", color: "#333" } },
    { selector: "node[type = 'identifier'][held_here >= 3]", css: {
      "font-size": 12, "font-weight": "bold", "min-zoomed-font-size": 4, "z-index": 20, "border-width": 2, "border-color": "#1d2430" } },
    { selector: "edge[relation = 'holds']", css: { width: 1, "line-color": "data(colour)", opacity: 0.55, "curve-style": "haystack" } },
    { selector: "edge[relation = 'link']", css: {
      width: "data(width)", "line-color": "data(colour)", "line-style": "dashed", "curve-style": "bezier",
      label: "data(name)", "font-size": 7, "text-rotation": "autorotate", color: "#555" } },
    { selector: ":selected", css: { "overlay-color": "#2f6fde", "overlay-opacity": 0.25, "overlay-padding": 4 } },
    { selector: ".filtered", css: { display: "none" } },
  ];

  function toElements(payload, focus) {
    const nodes = payload.nodes.map((n) => n.type === "user"
      ? { group: "nodes", data: Object.assign({}, n, { name: n.user_id, colour: riskColour(n.score), focus: n.user_id === focus, outside: payload.ring ? !n.in_ring : false }) }
      : { group: "nodes", data: Object.assign({}, n, {
          name: `${n.value}${n.holders > 1 ? " ×" + n.holders : ""}`,
          colour: KIND_COLOUR[n.kind] || "#868e96", size: Math.min(60, 14 + 4 * Math.sqrt(n.held_here || 1)) }) });
    const edges = payload.edges.map((e) => ({ group: "edges", data: Object.assign({}, e, {
      colour: KIND_COLOUR[e.kind] || "#868e96",
      width: e.relation === "link" ? (1 + 4 * (e.weight || 0)).toFixed(2) : 1,
      name: e.relation === "link" ? `${e.kind} ${fmt(e.similarity)}` : "" }) }));
    return nodes.concat(edges);
  }

  function layout() {
    if (!cy) return;
    // A force layout that cools fast (~140 rounds): a 150-member ring with its identifiers (~450
    // nodes) settles in about a second on a laptop instead of ten.
    cy.layout({ name: "cose", animate: false, randomize: true, nodeRepulsion: () => 9000, idealEdgeLength: () => 40,
      numIter: 400, coolingFactor: 0.95, fit: false }).run();
    cy.resize();
    cy.fit(undefined, 20);
    if (cy.zoom() > 1.5) { cy.zoom(1.5); cy.center(); } // a lone user is not drawn wall-sized
  }

  function draw(payload, focus) {
    if (cy) cy.destroy();
    cy = cytoscape({ container: $("cy"), elements: toElements(payload, focus), minZoom: 0.05, maxZoom: 4 });
    cy.style(STYLESHEET);
    layout();
    applyFilter();
    cy.on("tap", "node", (evt) => showNode(evt.target));
    cy.on("tap", "edge", (evt) => showEdge(evt.target));
    cy.on("dbltap", "node[type = 'user']", (evt) => { location.hash = "user=" + encodeURIComponent(evt.target.data("user_id")); });
    window.__gf = { cy, payload }; // for the end-to-end test and the console
    const box = $("cy");
    box.dataset.focus = focus;
    box.dataset.users = String(cy.nodes("[type = 'user']").length);
    box.dataset.identifiers = String(cy.nodes("[type = 'identifier']").length);
    kindFilters(payload);
    legend();
  }

  function kindFilters(payload) {
    const box = clear("kinds");
    const kinds = [...new Set(payload.edges.map((e) => e.kind))].sort();
    for (const kind of kinds) {
      const label = el("label");
      const box2 = el("input", { type: "checkbox", "data-kind": kind });
      box2.checked = !hidden.has(kind);
      box2.addEventListener("change", () => { if (box2.checked) hidden.delete(kind); else hidden.add(kind); applyFilter(); });
      const swatch = el("i");
      swatch.style.background = KIND_COLOUR[kind] || "#868e96";
      label.append(box2, swatch, document.createTextNode(kind));
      box.appendChild(label);
    }
  }

  function applyFilter() {
    if (!cy) return;
    cy.batch(() => {
      cy.elements().removeClass("filtered");
      cy.edges().filter((e) => hidden.has(e.data("kind"))).addClass("filtered");
      cy.nodes("[type = 'identifier']").filter((n) => hidden.has(n.data("kind"))).addClass("filtered");
    });
  }

  function legend() {
    const box = clear("legend");
    const add = (cls, colour, text) => {
      const span = el("span"); const i = el("i", cls ? { class: cls } : {});
      if (colour) i.style.background = colour;
      span.append(i, document.createTextNode(text)); box.appendChild(span);
    };
    box.appendChild(document.createTextNode("risk: "));
    add("risk-lo", null, "low"); add("risk-mid", null, "medium"); add("risk-hi", null, "high"); add("risk-none", null, "unscored");
    box.appendChild(document.createTextNode(" · identifiers: "));
    for (const kind of VOCAB.identifiers) add(null, KIND_COLOUR[kind.name], kind.label);
    box.appendChild(document.createTextNode(" · dashed border: outside the ring · dashed line: look-alike link"));
  }

  // ---- side panel -----------------------------------------------------------------------------
  function showNode(node) {
    const d = node.data();
    const box = clear("evidence");
    $("evidence-box").hidden = false;
    if (d.type === "user") {
      box.appendChild(el("p", {}, `user ${d.user_id} · score ${fmt(d.score)} · label ${fmt(d.label)}`));
      box.appendChild(el("span", { class: "ev-values" }, `${d.email || "no email"} · ${d.phone || "no phone"} · created ${d.created_at || "—"}`));
      const open = el("button", { type: "button", class: "link", "data-open": d.user_id }, "open (re-centre)");
      open.addEventListener("click", () => { location.hash = "user=" + encodeURIComponent(d.user_id); });
      const expand = el("button", { type: "button", class: "link", "data-expand": d.user_id }, "expand neighbours");
      expand.addEventListener("click", () => expandNode(d.user_id));
      box.append(open, document.createTextNode(" · "), expand);
      pick(d.user_id);
    } else {
      box.appendChild(el("p", {}, d.evidence));
      box.appendChild(el("span", { class: "ev-values" }, `${KIND_LABEL[d.kind] || d.kind}: ${d.value}`));
      const users = node.neighborhood("node[type = 'user']").map((n) => n.data("user_id")).sort();
      box.appendChild(el("p", { class: "muted" }, `held here by ${users.join(", ")}`));
    }
  }

  function showEdge(edge) {
    const d = edge.data();
    const box = clear("evidence");
    $("evidence-box").hidden = false;
    if (d.relation === "holds") {
      box.appendChild(el("p", {}, `${edge.source().data("user_id")} holds this ${KIND_LABEL[d.kind] || d.kind}`));
      return;
    }
    box.appendChild(el("p", {}, `${d.kind} link between ${d.user_a} and ${d.user_b}`));
    const tie = d.value_a === d.value_b ? `${d.value_a}` : `${d.value_a} ≈ ${d.value_b}`;
    box.appendChild(el("span", { class: "ev-values", "data-evidence": "values" }, `${tie}, similarity ${fmt(d.similarity)}`));
    box.appendChild(el("p", {}, d.evidence));
    box.appendChild(el("p", { class: "muted" }, `weight ${fmt(d.weight)} · support ${d.support}`));
  }

  function pick(userId) {
    picked = picked.filter((u) => u !== userId).concat([userId]).slice(-2);
    $("why-box").hidden = picked.length < 2;
    $("why-pair").textContent = picked.join(" — ");
    clear("why");
  }

  async function explain() {
    const [a, b] = picked;
    const out = clear("why");
    out.textContent = "Loading…";
    try {
      const exp = await api(`/v1/links/explain?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      out.textContent = "";
      if (!exp.connected) { out.textContent = `${a} and ${b} are not linked within 4 hops.`; return; }
      out.appendChild(el("p", {}, `Path: ${exp.path.join(" → ")}`));
      exp.hops.forEach((hop, i) => {
        const div = el("div", { class: "hop" });
        div.appendChild(el("strong", {}, `${exp.path[i]} — ${exp.path[i + 1]}`));
        const ul = el("ul");
        for (const l of hop) {
          const tie = l.value_a === l.value_b ? l.value_a : `${l.value_a} ≈ ${l.value_b}`;
          ul.appendChild(el("li", {}, `${l.kind}: ${tie} (similarity ${fmt(l.similarity)}, weight ${fmt(l.weight)}) — ${l.evidence}`));
        }
        div.appendChild(ul);
        out.appendChild(div);
      });
    } catch (err) {
      out.textContent = err.message;
    }
  }

  function fillSummary(userId, score) {
    $("summary").hidden = false;
    $("title").textContent = `User ${userId}`;
    $("scoreline").textContent = score.known
      ? `score ${fmt(score.score)}${score.ring_id ? ` · ring ${score.ring_id} (ring score ${fmt(score.ring_score)})` : " · in no ring"}`
      : `not in the served snapshot: neutral score ${fmt(score.score)}`;
    const reasons = clear("reasons");
    for (const code of score.reasons || []) reasons.appendChild(el("li", { title: code }, REASON_TEXT[code] || code));
    $("model").textContent = `model ${score.model_version} · snapshot ${score.snapshot}`;
  }

  function fillRing(payload, focus) {
    const ring = payload.ring;
    $("ring-box").hidden = !ring;
    $("members-box").hidden = !ring;
    $("ring-choice").hidden = !ring;
    clear("cut");
    for (const line of payload.cut || []) $("cut").appendChild(el("li", {}, line));
    if (payload.more_members) $("cut").appendChild(el("li", {}, `${payload.drawn_members} of ${payload.members.length} listed members drawn, riskiest first`));
    $("more").hidden = !payload.more_members;
    if (!ring) return;
    $("ring-title").textContent = `Ring ${ring.ring_id} · ${ring.size} members · ring score ${fmt(ring.ring_score)}`;
    const features = clear("features");
    for (const line of ring.features_text) features.appendChild(el("li", {}, line));
    features.appendChild(el("li", { class: "muted" }, `model ${ring.model_version || "—"}`));
    $("members-title").textContent = `Members (${payload.members.length}${payload.members.length < ring.size ? " of " + ring.size : ""}), riskiest first`;
    const body = $("members").querySelector("tbody");
    body.textContent = "";
    for (const m of payload.members) {
      const tr = el("tr", m.user_id === focus ? { class: "focus" } : {});
      const td = el("td");
      const a = el("a", { href: "#user=" + encodeURIComponent(m.user_id), "data-member": m.user_id }, m.user_id);
      td.appendChild(a);
      tr.append(td, el("td", {}, fmt(m.score)), el("td", {}, m.label === null ? "—" : m.label === 1 ? "fraud" : "not fraud"));
      body.appendChild(tr);
    }
    loadHistory(ring.ring_id);
  }

  async function loadHistory(ringId) {
    // Ring lineage comes from GET /v1/rings/{id}/history where the service has it.
    $("history").hidden = true;
    try {
      const h = await api(`/v1/rings/${encodeURIComponent(ringId)}/history`);
      const list = clear("history-list");
      // {events: [{run_id, at, ring_id, event, other_ring_id, size_before, size_after}]}, oldest first
      const events = h.events || [];
      for (const e of events) {
        const other = e.other_ring_id ? ` (${e.event === "merged_into" ? "into" : "from"} ${e.other_ring_id})` : "";
        list.appendChild(el("li", {}, `${String(e.at || "").slice(0, 10)} ${e.ring_id} ${String(e.event).replace("_", " ")}${other}: ${e.size_before} → ${e.size_after} members`));
      }
      if (h.truncated) list.appendChild(el("li", { class: "muted" }, "older events not shown"));
      $("history").hidden = events.length === 0;
    } catch (err) { /* no history endpoint, or none for this ring */ }
  }

  async function verdicts(userId, ringId) {
    $("verdict-box").hidden = false;
    $("verdict-form").hidden = !(WHO && WHO.permissions.includes("write_verdict"));
    const list = clear("verdicts");
    const subjects = [["user", userId]].concat(ringId ? [["ring", ringId]] : []);
    for (const [subject, id] of subjects) {
      try {
        const got = await api(`/v1/verdicts?subject=${subject}&id=${encodeURIComponent(id)}`);
        for (const v of got.verdicts) {
          list.appendChild(el("li", { "data-verdict": v.outcome },
            `${subject} ${id}: ${v.outcome.replace("_", " ")} — ${v.note || "no note"} (${v.role} ${v.key_id}, ${v.recorded_at.slice(0, 16).replace("T", " ")})`));
        }
      } catch (err) {
        list.appendChild(el("li", {}, `verdicts unavailable: ${err.message}`));
      }
    }
    if (!list.childElementCount) list.appendChild(el("li", { class: "muted" }, "no verdict yet"));
  }

  async function recordVerdict(event) {
    event.preventDefault();
    const out = $("verdict-status");
    out.className = "";
    out.textContent = "saving…";
    const subject = document.querySelector("input[name=subject]:checked").value;
    const body = {
      subject,
      subject_id: subject === "ring" ? current.ringId : current.userId,
      outcome: $("outcome").value,
      note: $("note").value,
    };
    try {
      await api("/v1/verdicts", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      out.textContent = "recorded";
      $("note").value = "";
      await verdicts(current.userId, current.ringId);
    } catch (err) {
      out.className = "error";
      out.textContent = err.message;
    }
  }

  // ---- lookups --------------------------------------------------------------------------------
  function resetPanels() {
    picked = [];
    for (const id of ["summary", "ring-box", "evidence-box", "why-box", "members-box", "verdict-box"]) $(id).hidden = true;
    clear("why"); clear("evidence"); clear("cut"); $("verdict-status").textContent = "";
  }

  async function showUser(userId, drawn) {
    status("Loading…");
    resetPanels();
    try {
      await vocabulary();
      const score = await api(`/v1/users/${encodeURIComponent(userId)}/score`);
      fillSummary(userId, score);
      current = { userId, ringId: score.ring_id, drawn: drawn || 150 };
      let payload;
      try {
        payload = await api(`/v1/users/${encodeURIComponent(userId)}/graph?members=${current.drawn}`);
      } catch (err) {
        if (err.status === 503) {
          status("The graph database is not answering: the score above is still served, but rings, links and evidence are unavailable. Retry in a few seconds.", "warn");
        } else if (err.status === 404) {
          status(`No user ${userId} in the graph (${err.message}).`, "error");
        } else throw err;
        if (cy) { cy.destroy(); cy = null; }
        await verdicts(userId, null).catch(() => {});
        return;
      }
      draw(payload, userId);
      fillRing(payload, userId);
      await verdicts(userId, payload.ring ? payload.ring.ring_id : null);
      status(payload.ring ? "" : payload.edges.some((e) => e.relation === "link")
        ? `${userId} is in no ring: its direct neighbours and links are shown.`
        : `${userId} is in no ring and shares no identifier with another account.`);
    } catch (err) {
      status(err.status === 401 ? `${err.message} (check the API key)` : err.message, "error");
    }
  }

  async function expandNode(userId) {
    try {
      const payload = await api(`/v1/users/${encodeURIComponent(userId)}/graph?scope=neighbours`);
      const fresh = toElements(payload, current.userId).filter((e) => cy.getElementById(e.data.id).empty());
      for (const e of fresh) if (e.data.type === "user") e.data.outside = true;
      cy.add(fresh);
      layout();
      applyFilter();
      kindFilters({ edges: cy.edges().map((e) => e.data()) });
      status(`${fresh.filter((e) => e.group === "nodes").length} nodes added around ${userId}.`);
    } catch (err) {
      status(err.message, "error");
    }
  }

  function route() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("key")) {
      // automation only: read once and wiped from the address bar; fragments never reach the server
      keyInput.value = params.get("key");
      sessionStorage.setItem("gf-key", keyInput.value);
      params.delete("key");
      history.replaceState(null, "", location.pathname + (params.toString() ? "#" + params.toString() : ""));
    }
    const user = params.get("user");
    if (user && keyInput.value) { $("user").value = user; showUser(user); }
  }

  $("lookup").addEventListener("submit", (e) => {
    e.preventDefault();
    const target = "user=" + encodeURIComponent($("user").value.trim());
    if (location.hash.slice(1) === target) route(); else location.hash = target;
  });
  $("why-go").addEventListener("click", explain);
  $("verdict-form").addEventListener("submit", recordVerdict);
  $("fit").addEventListener("click", () => cy && cy.fit(undefined, 20));
  $("relayout").addEventListener("click", layout);
  $("more").addEventListener("click", () => showUser(current.userId, current.drawn + 150));
  window.addEventListener("hashchange", route);
  route();
})();
