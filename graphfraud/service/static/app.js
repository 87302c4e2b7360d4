// graphfraud ring explorer: plain JS, no dependencies, no network beyond this server.
"use strict";
(function () {
  // Link kinds, legend colours and reason wording come from the served run's identifier
  // registry (GET /v1/vocabulary), so declared kinds show up without a page change.
  let KIND_COLORS = {};
  let REASON_TEXT = {};
  async function vocabulary() {
    const vocab = await api("/v1/vocabulary");
    KIND_COLORS = {};
    for (const kind of vocab.identifiers) for (const link of kind.links) KIND_COLORS[link.kind] = link.colour;
    REASON_TEXT = Object.fromEntries(vocab.reasons.map((r) => [r.code, r.text]));
  }
  const reasonWords = (codes) => codes.map((c) => REASON_TEXT[c] || c).join("; ");
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg"; // an XML namespace name, never fetched
  const keyInput = $("key");
  keyInput.value = sessionStorage.getItem("gf-key") || "";

  function el(tag, attrs, text) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function status(msg, isError) {
    const box = $("status");
    box.textContent = msg || "";
    box.className = isError ? "error" : "";
  }

  async function api(path) {
    sessionStorage.setItem("gf-key", keyInput.value);
    const res = await fetch(path, { headers: { "X-API-Key": keyInput.value } });
    const body = await res.json().catch(() => ({ error: "bad_response", detail: res.statusText }));
    if (!res.ok) {
      const err = new Error(`${res.status} ${body.error || ""}: ${body.detail || ""}${body.hint ? " — " + body.hint : ""}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function scoreColor(s) {
    if (s === null || s === undefined) return "#ced4da";
    const r = Math.round(60 + 195 * s), g = Math.round(170 - 130 * s), b = Math.round(90 - 50 * s);
    return `rgb(${r},${g},${b})`;
  }

  function fmt(x) {
    if (x === null || x === undefined) return "—";
    return typeof x === "number" && !Number.isInteger(x) ? x.toFixed(3) : x;
  }

  function drawGraph(ring, focus) {
    const svg = $("graph");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 640, H = 440, cx = W / 2, cy = H / 2;
    const members = ring.members;
    const n = members.length;
    const radius = Math.min(W, H) / 2 - 50;
    const pos = {};
    members.forEach((m, i) => {
      const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
      pos[m.user_id] = n === 1 ? [cx, cy] : [cx + radius * Math.cos(a), cy + radius * Math.sin(a)];
    });
    const edges = el("svg:g");
    const seen = {};
    for (const link of ring.links) {
      const p = pos[link.user_a], q = pos[link.user_b];
      if (!p || !q) continue;
      const pair = link.user_a + "|" + link.user_b;
      const k = (seen[pair] = (seen[pair] || 0) + 1) - 1; // parallel links fan out
      const mx = (p[0] + q[0]) / 2, my = (p[1] + q[1]) / 2;
      const dx = q[0] - p[0], dy = q[1] - p[1], len = Math.hypot(dx, dy) || 1;
      const off = (k % 2 ? -1 : 1) * Math.ceil(k / 2) * 14;
      const c = [mx - (dy / len) * off, my + (dx / len) * off];
      const path = el("svg:path", {
        d: `M${p[0]},${p[1]} Q${c[0]},${c[1]} ${q[0]},${q[1]}`,
        stroke: KIND_COLORS[link.kind] || "#495057",
        "stroke-width": (1 + 5 * (link.weight || 0)).toFixed(2),
        fill: "none", opacity: "0.8",
      });
      path.appendChild(el("svg:title", {}, `${link.kind} (w=${fmt(link.weight)}): ${link.evidence}`));
      edges.appendChild(path);
    }
    svg.appendChild(edges);
    for (const m of members) {
      const [x, y] = pos[m.user_id];
      const g = el("svg:g", { class: "node" + (m.user_id === focus ? " focus" : ""), transform: `translate(${x},${y})` });
      g.appendChild(el("svg:circle", { r: 14, fill: scoreColor(m.score) }));
      g.appendChild(el("svg:text", { y: 28 }, m.user_id));
      g.appendChild(el("svg:title", {}, `${m.user_id} score ${fmt(m.score)} ${m.email || ""} ${m.phone || ""}`));
      g.addEventListener("click", () => { $("ea").value = focus; $("eb").value = m.user_id; });
      svg.appendChild(g);
    }
    const legend = $("legend");
    legend.textContent = "";
    for (const [kind, color] of Object.entries(KIND_COLORS)) {
      const item = el("span");
      item.appendChild(el("i"));
      item.firstChild.style.background = color;
      item.appendChild(document.createTextNode(kind));
      legend.appendChild(item);
    }
  }

  function fillTable(id, rows) {
    const body = $(id).querySelector("tbody");
    body.textContent = "";
    for (const cells of rows) {
      const tr = el("tr");
      for (const c of cells) tr.appendChild(el("td", {}, fmt(c)));
      body.appendChild(tr);
    }
  }

  async function showUser(userId) {
    status("Loading…");
    for (const id of ["summary", "graph-box", "members-box", "links-box", "history-box"]) $(id).hidden = true;
    try {
      await vocabulary();
      const score = await api(`/v1/users/${encodeURIComponent(userId)}/score`);
      $("title").textContent = `User ${userId}`;
      $("scoreline").textContent = score.known
        ? `score ${fmt(score.score)} · ring ${score.ring_id || "none"} (${fmt(score.ring_score)}) · reasons: ${reasonWords(score.reasons) || "—"} · model ${score.model_version}`
        : `not in the snapshot (neutral score ${fmt(score.score)})`;
      $("summary").hidden = false;
      const view = await api(`/v1/users/${encodeURIComponent(userId)}/ring`);
      if (!view.ring) { status(`${userId} is in no ring.`); return; }
      const ring = view.ring;
      $("title").textContent = `User ${userId} · ring ${ring.ring_id} · ${ring.size} members · ring score ${fmt(ring.ring_score)}${ring.masked ? " · PII masked" : ""}${ring.truncated ? " · truncated" : ""}`;
      drawGraph(ring, userId);
      fillTable("members", ring.members.map((m) => [m.user_id, m.score, m.email, m.phone, m.label, m.created_at]));
      fillTable("links", ring.links.map((l) => [l.user_a, l.user_b, l.kind, l.weight, l.evidence]));
      for (const id of ["graph-box", "members-box", "links-box"]) $(id).hidden = false;
      $("ea").value = userId;
      status("");
      // what happened to this ring id across batch runs (born, grew, merged_into, …)
      const past = await api(`/v1/rings/${encodeURIComponent(ring.ring_id)}/history`);
      fillTable("history", past.events.map((e) => [e.run_id, e.at, e.ring_id, e.event, e.other_ring_id, e.size_before, e.size_after, e.shared]));
      $("history-box").hidden = past.events.length === 0;
    } catch (err) {
      status(err.message, true);
    }
  }

  async function explain(a, b) {
    const out = $("explanation");
    out.textContent = "Loading…";
    try {
      const exp = await api(`/v1/links/explain?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      out.textContent = "";
      if (!exp.connected) { out.textContent = `${a} and ${b} are not linked within the search depth.`; return; }
      out.appendChild(el("p", {}, `Path: ${exp.path.join(" → ")}`));
      exp.hops.forEach((hop, i) => {
        const div = el("div", { class: "hop" });
        div.appendChild(el("strong", {}, `${exp.path[i]} — ${exp.path[i + 1]}`));
        const ul = el("ul");
        for (const l of hop) ul.appendChild(el("li", {}, `${l.kind} (weight ${fmt(l.weight)}, support ${l.support}): ${l.evidence}`));
        div.appendChild(ul);
        out.appendChild(div);
      });
    } catch (err) {
      out.textContent = err.message;
    }
  }

  $("lookup").addEventListener("submit", (e) => { e.preventDefault(); showUser($("user").value.trim()); });
  $("explain").addEventListener("submit", (e) => { e.preventDefault(); explain($("ea").value.trim(), $("eb").value.trim()); });
  // `#user=<id>` opens a user; `#key=` (automation only) is read once and wiped from the address
  // bar at once. Fragments are never sent to the server, so the key stays out of its logs.
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("key")) { keyInput.value = params.get("key"); sessionStorage.setItem("gf-key", keyInput.value); }
  if (location.hash) history.replaceState(null, "", location.pathname);
  if (params.get("user")) { $("user").value = params.get("user"); if (keyInput.value) showUser(params.get("user")); }
})();
