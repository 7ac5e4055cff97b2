// condfip what-if page: plain JS and SVG, no libraries, nothing loaded from elsewhere.
// Every number shown comes from the server's JSON API (the condfip library); this file only draws.
// The page's own state (upload token, interventions, chosen row) lives in sessionStorage: a reload keeps it,
// another tab or browser does not see it.
"use strict";

const STORE_KEY = "condfip-serve";
const SVG = "http://www.w3.org/2000/svg";
// discovery: the token of this tab's discovery while its graph is not yet accepted; edits: the edited edge list
// ([cause, effect] pairs), null while the proposal is unedited
const state = { session: null, interventions: {}, row: 0, target: null, discovery: null, edits: null };
let summary = null;
let proposal = null;  // the discovery's latest answer
let requestCount = 0;
let pending = 0;
let timer = null;
let pollTimer = null;

const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 3) => (v === null || v === undefined ? "-" : Number(v).toPrecision(digits));

function save() {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
}

function restore() {
  try {
    Object.assign(state, JSON.parse(sessionStorage.getItem(STORE_KEY) || "{}"));
  } catch (err) {
    sessionStorage.removeItem(STORE_KEY);
  }
}

function busy(delta) {
  pending += delta;
  document.body.dataset.busy = pending > 0 ? "1" : "0";
  $("status").textContent = pending > 0 ? "computing..." : "";
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// quiet: a progress poll, which does not count as a computation in flight
async function api(path, body, asText = false, quiet = false) {
  if (!quiet) busy(1);
  try {
    const response = await fetch("/api/" + path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session: state.session, ...body }),
    });
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error || message; } catch (err) { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return asText ? await response.text() : await response.json();
  } finally {
    if (!quiet) busy(-1);
  }
}

function el(tag, attrs = {}, text = null, ns = null) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function interventionList() {
  return Object.entries(state.interventions).map(([node, iv]) => ({ node, kind: iv.kind, value: iv.value }));
}

function downstreamOf(nodes) {
  const children = {};
  for (const [a, b] of summary.edges) (children[a] = children[a] || []).push(b);
  const seen = new Set();
  const stack = [...nodes];
  while (stack.length) {
    for (const child of children[stack.pop()] || []) {
      if (!seen.has(child)) { seen.add(child); stack.push(child); }
    }
  }
  return summary.nodes.filter((n) => seen.has(n));
}

// ---- the graph --------------------------------------------------------------------------------------------

// a graph view: { nodes, layout, edges: [{ cause, effect, confidence, low }] }; a discovered edge carries its
// confidence (drawn as a label; low: dashed red), any other edge null
function drawGraph(svg, view, { classesOf = () => [], onClick = null } = {}) {
  svg.replaceChildren();
  const width = 640, height = 400, boxW = 78, boxH = 26;
  const at = (node) => [20 + boxW / 2 + view.layout[node][0] * (width - 40 - boxW),
                        10 + boxH / 2 + view.layout[node][1] * (height - 20 - boxH)];
  const defs = el("defs", {}, null, SVG);
  for (const [id, colour] of [["arrow", "#666"], ["arrow-low", "#c62828"]]) {
    const marker = el("marker", { id: svg.id + "-" + id, viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
                                  markerHeight: "7", orient: "auto-start-reverse" }, null, SVG);
    marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colour }, null, SVG));
    defs.appendChild(marker);
  }
  svg.appendChild(defs);
  for (const edge of view.edges) {
    const [x1, y1] = at(edge.cause), [x2, y2] = at(edge.effect);
    // stop the arrow at the target box's border
    const dx = x2 - x1, dy = y2 - y1;
    const t = Math.min(Math.abs(dx) > 0 ? (boxW / 2) / Math.abs(dx) : 1, Math.abs(dy) > 0 ? (boxH / 2) / Math.abs(dy) : 1);
    const attrs = { class: "dag-edge" + (edge.low ? " low-confidence" : ""), "data-edge": edge.cause + "->" + edge.effect,
                    x1, y1, x2: x2 - dx * t, y2: y2 - dy * t, "marker-end": `url(#${svg.id}-${edge.low ? "arrow-low" : "arrow"})` };
    if (edge.confidence !== null && edge.confidence !== undefined) attrs["data-confidence"] = edge.confidence;
    svg.appendChild(el("line", attrs, null, SVG));
    if (edge.confidence !== null && edge.confidence !== undefined) {
      svg.appendChild(el("text", { class: "edge-confidence" + (edge.low ? " low-confidence" : ""), x: (x1 + x2) / 2 + 4,
                                   y: (y1 + y2) / 2 - 3 }, fmt(edge.confidence, 2), SVG));
    }
  }
  for (const node of view.nodes) {
    const [x, y] = at(node);
    const group = el("g", { class: ["dag-node", ...classesOf(node)].join(" "), "data-node": node }, null, SVG);
    group.appendChild(el("rect", { x: x - boxW / 2, y: y - boxH / 2, width: boxW, height: boxH, rx: 6 }, null, SVG));
    group.appendChild(el("text", { x, y: y + 4, "text-anchor": "middle" }, node.length > 11 ? node.slice(0, 10) + "…" : node, SVG));
    group.appendChild(el("title", {}, node, SVG));
    if (onClick) {
      for (const [key, value] of Object.entries({ tabindex: "0", role: "button", "aria-label": "intervene on " + node })) {
        group.setAttribute(key, value);
      }
      group.addEventListener("click", () => onClick(node));
      group.addEventListener("keydown", (event) => { if (event.key === "Enter") onClick(node); });
    }
    svg.appendChild(group);
  }
}

function drawDag() {
  const chosen = Object.keys(state.interventions);
  const downstream = new Set(downstreamOf(chosen));
  const classesOf = (node) => (chosen.includes(node) ? ["intervened"] : downstream.has(node) ? ["downstream"] : []);
  drawGraph($("dag"), { nodes: summary.nodes, layout: summary.layout, edges: summary.graph.edges },
            { classesOf, onClick: toggle });
}

function toggle(node) {
  if (state.interventions[node]) delete state.interventions[node];
  else state.interventions[node] = { kind: "do", value: summary.sliders[node].mean };
  changed(true);
}

// ---- the sliders ------------------------------------------------------------------------------------------

function beyond(node, iv) {
  const s = summary.sliders[node];
  const where = iv.kind === "do" ? iv.value : s.mean + iv.value;
  return where < s.min || where > s.max;
}

function drawInterventions() {
  const box = $("interventions");
  box.replaceChildren();
  const nodes = Object.keys(state.interventions);
  if (!nodes.length) { box.appendChild(el("p", { class: "hint" }, "No node chosen yet.")); return; }
  for (const node of nodes) {
    const iv = state.interventions[node];
    const s = summary.sliders[node];
    const [low, high] = s[iv.kind];
    const card = el("div", { class: "intervention", "data-node": node });
    const head = el("div", { class: "head" });
    head.appendChild(el("strong", {}, node));
    const kind = el("select", { class: "kind" });
    for (const k of ["do", "shift"]) {
      const option = el("option", { value: k }, k === "do" ? "set to (hard)" : "shift by");
      if (k === iv.kind) option.selected = true;
      kind.appendChild(option);
    }
    kind.addEventListener("change", () => {
      iv.kind = kind.value;
      iv.value = iv.kind === "do" ? s.mean : 0;
      changed(true);
    });
    head.appendChild(kind);
    const shown = el("span", { class: "value" }, fmt(iv.value, 4));
    head.appendChild(shown);
    const flag = el("span", { class: "beyond-flag" }, beyond(node, iv) ? "beyond the data" : "");
    head.appendChild(flag);
    const release = el("button", { type: "button", class: "release" }, "release");
    release.addEventListener("click", () => toggle(node));
    head.appendChild(release);
    card.appendChild(head);
    const slider = el("input", { type: "range", class: "slider", min: low, max: high, step: (high - low) / 400,
                                 "aria-label": node + " " + iv.kind });
    slider.value = iv.value;
    slider.addEventListener("input", () => {
      iv.value = Number(slider.value);
      shown.textContent = fmt(iv.value, 4);
      flag.textContent = beyond(node, iv) ? "beyond the data" : "";
      changed(false);
    });
    card.appendChild(slider);
    // the slider's track: green where the data reach, hatched red beyond them
    const inLow = iv.kind === "do" ? s.min : s.min - s.mean, inHigh = iv.kind === "do" ? s.max : s.max - s.mean;
    const zone = el("div", { class: "zone" });
    const left = el("div", { class: "beyond" }), right = el("div", { class: "beyond" });
    left.style.left = "0"; left.style.width = (100 * (inLow - low) / (high - low)) + "%";
    right.style.right = "0"; right.style.width = (100 * (high - inHigh) / (high - low)) + "%";
    zone.append(left, right);
    card.appendChild(zone);
    const labels = el("div", { class: "zone-labels" });
    labels.append(el("span", {}, "◀ beyond the data"), el("span", { class: "hint" },
      "data: " + fmt(s.min, 3) + " to " + fmt(s.max, 3) + (iv.kind === "shift" ? " (mean " + fmt(s.mean, 3) + ")" : "")),
      el("span", {}, "beyond the data ▶"));
    card.appendChild(labels);
    box.appendChild(card);
  }
}

// ---- the answers ------------------------------------------------------------------------------------------

function changed(redraw) {
  save();
  if (redraw) { drawDag(); drawInterventions(); drawTargets(); markReport(); }
  clearTimeout(timer);
  timer = setTimeout(refresh, redraw ? 0 : 120);
}

async function refresh() {
  const mine = ++requestCount;
  const interventions = interventionList();
  try {
    const [dist, cf] = await Promise.all([
      api("intervene", { interventions, n: 1000, seed: 0 }),
      api("counterfactual", { interventions, row: state.row }),
    ]);
    if (mine !== requestCount) return;  // a newer request is on its way
    drawHistograms(dist);
    drawCounterfactual(cf);
    const list = $("beyond-warnings");
    list.replaceChildren(...dist.warnings.map((w) => el("li", {}, w)));
  } catch (err) {
    if (mine === requestCount) fail(err);
  }
}

function drawHistograms(answer) {
  const box = $("histograms");
  box.replaceChildren();
  if (!answer.nodes.length) box.appendChild(el("p", { class: "hint" }, "Choose a node in the graph."));
  const W = 260, H = 120, pad = 14;
  for (const item of answer.nodes) {
    const h = item.histogram;
    const lo = h.edges[0], hi = h.edges[h.edges.length - 1];
    const top = Math.max(...h.observational, ...h.interventional) || 1;
    const X = (v) => pad + (W - 2 * pad) * (Math.min(Math.max(v, lo), hi) - lo) / (hi - lo);
    const Y = (d) => H - pad - (H - 2 * pad) * d / top;
    const card = el("div", { class: "hist", "data-node": item.node });
    card.appendChild(el("h3", {}, item.node + (item.intervened ? " (intervened)" : "")));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}` }, null, SVG);
    for (const [series, cls] of [["observational", "bar-obs"], ["interventional", "bar-int"]]) {
      h[series].forEach((d, k) => {
        if (d > 0) {
          svg.appendChild(el("rect", { class: cls, x: X(h.edges[k]), y: Y(d), width: Math.max(X(h.edges[k + 1]) - X(h.edges[k]) - 0.5, 0.5),
                                       height: H - pad - Y(d) }, null, SVG));
        }
      });
    }
    svg.appendChild(el("line", { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: "#999" }, null, SVG));
    for (const [value, cls] of [[item.observational_mean, "observational"], [item.interventional_mean, "interventional"]]) {
      svg.appendChild(el("line", { class: "mean-line " + cls, "data-mean": value, x1: X(value), x2: X(value),
                                   y1: pad / 2, y2: H - pad }, null, SVG));
    }
    svg.appendChild(el("text", { x: pad, y: H - 2, "font-size": 9 }, fmt(lo, 3), SVG));
    svg.appendChild(el("text", { x: W - pad, y: H - 2, "font-size": 9, "text-anchor": "end" }, fmt(hi, 3), SVG));
    card.appendChild(svg);
    card.appendChild(el("p", { class: "caption" }, "mean " + fmt(item.observational_mean) + " → " +
                        fmt(item.interventional_mean) + " (shift " + (item.shift >= 0 ? "+" : "") + fmt(item.shift) + ")"));
    box.appendChild(card);
  }
  box.dataset.version = String(Number(box.dataset.version) + 1);
}

function drawCounterfactual(answer) {
  const table = $("cf-table");
  table.replaceChildren();
  const head = el("tr");
  head.append(el("th", {}, "node"), el("th", {}, "factual (row " + answer.label + ")"), el("th", {}, "counterfactual"),
              el("th", {}, "change"));
  table.appendChild(head);
  for (const v of answer.values) {
    const change = v.counterfactual - v.factual;
    const row = el("tr", { "data-node": v.node, class: Math.abs(change) > 1e-9 ? "changed" : "" });
    row.append(el("td", {}, v.node), el("td", {}, fmt(v.factual, 4)), el("td", {}, fmt(v.counterfactual, 4)),
               el("td", {}, (change >= 0 ? "+" : "") + fmt(change, 3)));
    table.appendChild(row);
  }
}

function drawTargets() {
  const select = $("effect-target");
  const options = downstreamOf(Object.keys(state.interventions));
  select.replaceChildren(...options.map((n) => el("option", { value: n }, n)));
  if (options.includes(state.target)) select.value = state.target;
  state.target = options.length ? select.value : null;
  $("effect-button").disabled = !options.length;
}

async function estimateEffect() {
  const result = $("effect-result");
  result.className = "";
  result.textContent = "estimating (" + $("effect-bootstrap").value + " re-inferences)...";
  try {
    const answer = await api("effect", { interventions: interventionList(), target: state.target,
                                         bootstrap: Number($("effect-bootstrap").value), n: 500, seed: 0 });
    result.textContent = answer.text + " — " + answer.seconds.toFixed(1) + " s";
    result.dataset.effect = answer.effect;
  } catch (err) {
    result.className = "error";
    result.textContent = err.message;
  }
}

function drawReport() {
  const table = $("report-table");
  table.replaceChildren();
  const head = el("tr");
  for (const name of ["node", "parents", "R²", "noise std", "noise kurtosis", "noise-parent dependence", "p", "independent"]) {
    head.appendChild(el("th", {}, name));
  }
  table.appendChild(head);
  for (const r of summary.report.rows) {
    const row = el("tr", { "data-node": r.node });
    const root = r.parents === 0;
    row.append(el("td", {}, r.node), el("td", {}, String(r.parents)),
               el("td", { class: r.r2 !== null && r.r2 < 0 ? "bad" : "" }, root ? "root" : fmt(r.r2, 2)),
               el("td", {}, fmt(r.noise_std)), el("td", {}, fmt(r.noise_kurtosis, 2)),
               el("td", {}, root ? "-" : fmt(r.dependence, 2)), el("td", {}, root ? "-" : fmt(r.p_value, 2)),
               el("td", { class: r.independent === false ? "bad" : "" }, r.independent === null ? "-" : (r.independent ? "yes" : "no")));
    table.appendChild(row);
  }
  $("report-warnings").replaceChildren(...summary.report.warnings.map((w) => el("li", {}, w)));
  markReport();
}

function markReport() {
  for (const row of $("report-table").querySelectorAll("tr[data-node]")) {
    row.classList.toggle("selected", row.dataset.node in state.interventions);
  }
}

// ---- data: summary, upload, download ----------------------------------------------------------------------

function fail(err) {
  if (err instanceof ApiError && err.status === 410) {
    // the server no longer holds this tab's upload: say so, then show the server's own data
    showBanner(err.message);
    state.session = null;
    state.interventions = {};
    save();
    load();
    return;
  }
  showBanner(err.message);
}

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message;
  banner.hidden = false;
}

function show(newSummary) {
  summary = newSummary;
  for (const node of Object.keys(state.interventions)) {
    if (!summary.nodes.includes(node)) delete state.interventions[node];
  }
  state.row = Math.min(Math.max(0, state.row | 0), summary.rows - 1);
  $("cf-row").max = summary.rows - 1;
  $("cf-row").value = state.row;
  $("dataset-name").textContent = summary.name + " — " + summary.rows + " rows, " + summary.nodes.length +
    " nodes, " + summary.edges.length + " edges" + (state.session ? " (your upload)" : "");
  $("notes").replaceChildren(...summary.notes.map((w) => el("li", {}, w)));
  const source = $("graph-source");
  source.hidden = summary.graph.source === "given";
  source.textContent = source.hidden ? "" : "This graph was discovered from the data, not given (" +
    summary.graph.source + "): every answer on this page depends on it. Edges are labelled with their confidence; " +
    "dashed red: below " + summary.graph.low_confidence + ".";
  $("discover-resamples").value = $("discover-resamples").value || summary.discovery_resamples;
  drawReport();
  changed(true);
}

async function load() {
  try {
    show(await api("summary", {}));
  } catch (err) {
    fail(err);
  }
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}

// the server refuses these too; this saves sending them
function tooBig(files) {
  const file = files.find((f) => f.size > summary.upload_limit_bytes);
  if (!file) return null;
  const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1) + " MiB";
  return file.name + " is " + mib(file.size) + ", over the page's limit of " + mib(summary.upload_limit_bytes) +
    " per file; fix: upload fewer rows (the model uses at most 1000 context rows) or use the CLI for large files";
}

async function encodedFile(file) {
  return { name: file.name, content: await readBase64(file) };
}

// a workspace opened by an upload or an accepted graph: this tab's data from now on
function opened(answer) {
  state.session = answer.session;
  state.interventions = {};
  state.row = 0;
  $("banner").hidden = true;
  show(answer.summary);
}

async function upload(event) {
  event.preventDefault();
  const error = $("upload-error");
  error.textContent = "";
  const dataFile = $("upload-data").files[0], graphFile = $("upload-graph").files[0];
  if (!dataFile) { error.textContent = "choose a data table"; return; }
  if (!graphFile) {
    error.textContent = "choose a graph file too, or click \u201cDiscover the graph\u201d to have one proposed from the table";
    return;
  }
  error.textContent = tooBig([dataFile, graphFile]) || "";
  if (error.textContent) return;
  try {
    opened(await api("upload", { data: await encodedFile(dataFile), graph: await encodedFile(graphFile), session: null }));
  } catch (err) {
    error.textContent = err.message;
  }
}

// ---- discovery: a table without a graph -------------------------------------------------------------------

async function startDiscovery() {
  const error = $("upload-error");
  error.textContent = "";
  const dataFile = $("upload-data").files[0];
  if (!dataFile) { error.textContent = "choose the data table to discover its graph from"; return; }
  error.textContent = tooBig([dataFile]) || "";
  if (error.textContent) return;
  try {
    const answer = await api("discover", { data: await encodedFile(dataFile), resamples: Number($("discover-resamples").value),
                                           session: null });
    state.discovery = answer.discovery;
    state.edits = null;
    save();
    showDiscovery(answer);
  } catch (err) {
    error.textContent = err.message;
  }
}

async function pollDiscovery() {
  clearTimeout(pollTimer);
  if (!state.discovery) return;
  try {
    showDiscovery(await api("discovery", { discovery: state.discovery }, false, true));
  } catch (err) {
    if (err instanceof ApiError && err.status === 410) {
      dropDiscovery();
      showBanner(err.message);
    } else {
      $("discovery-error").textContent = err.message;
    }
  }
}

function showDiscovery(answer) {
  proposal = answer;
  const panel = $("discovery");
  panel.hidden = false;
  panel.dataset.state = answer.state;
  const what = answer.method.toUpperCase() + " (condfip.discover's default for " + answer.nodes.length + " columns)";
  const status = $("discovery-status");
  if (answer.state === "waiting") {
    status.textContent = "waiting: the server discovers one graph at a time...";
  } else if (answer.state === "running") {
    status.textContent = "discovering the graph of " + answer.name + " with " + what + "... " +
      (answer.done === 0 ? "searching all " + answer.rows + " rows, then " + answer.resamples + " subsamples (halves of the rows)"
                         : "subsamples: " + answer.done + " of " + answer.resamples + " done") +
      " (" + answer.seconds.toFixed(1) + " s)";
  } else if (answer.state === "failed") {
    status.textContent = "";
  } else {
    status.textContent = "discovered by " + what + " in " + answer.seconds.toFixed(1) + " s, with " + answer.resamples +
      " subsamples (random halves) of the " + answer.rows + " rows of " + answer.name + ".";
  }
  $("discovery-error").textContent = answer.state === "failed" ? answer.error : "";
  $("proposal").hidden = answer.state !== "done";
  $("discovery-resamples-shown").textContent = String(answer.resamples);
  $("discovery-low-shown").textContent = String(answer.low_confidence);
  if (answer.state === "done") drawProposal();
  if (answer.state === "waiting" || answer.state === "running") pollTimer = setTimeout(pollDiscovery, 400);
}

// the proposal as edited: each edge as discovered keeps its confidence and mark, one added or reversed has none
function proposedEdges() {
  if (state.edits === null) return proposal.edges;
  const found = new Map(proposal.edges.map((e) => [e.cause + "->" + e.effect, e]));
  return state.edits.map(([cause, effect]) => found.get(cause + "->" + effect) || { cause, effect, confidence: null, low: false });
}

function edit(change) {
  const edges = proposedEdges().map((e) => [e.cause, e.effect]);
  state.edits = change(edges);
  save();
  drawProposal();
}

function drawProposal() {
  const edges = proposedEdges();
  drawGraph($("proposal-dag"), { nodes: proposal.nodes, layout: proposal.layout, edges });
  const table = $("proposal-edges");
  table.replaceChildren();
  const head = el("tr");
  head.append(el("th", {}, "cause"), el("th", {}, "effect"), el("th", {}, "confidence"), el("th", {}, "edit"));
  table.appendChild(head);
  edges.forEach((e, k) => {
    const row = el("tr", { "data-edge": e.cause + "->" + e.effect, class: e.low ? "low-confidence" : "" });
    const confidence = e.confidence === null ? "yours (not discovered)" : fmt(e.confidence, 2) + (e.low ? " low" : "");
    const actions = el("td");
    const reverse = el("button", { type: "button", class: "reverse-edge" }, "reverse");
    reverse.addEventListener("click", () => edit((list) => { list[k] = [e.effect, e.cause]; return list; }));
    const remove = el("button", { type: "button", class: "remove-edge" }, "remove");
    remove.addEventListener("click", () => edit((list) => list.filter((_, j) => j !== k)));
    actions.append(reverse, remove);
    row.append(el("td", {}, e.cause), el("td", {}, e.effect), el("td", {}, confidence), actions);
    table.appendChild(row);
  });
  $("edit-count").textContent = state.edits === null ? "as discovered" : "edited by you";
  for (const id of ["add-cause", "add-effect"]) {
    const select = $(id);
    if (select.options.length !== proposal.nodes.length || [...select.options].some((o, j) => o.value !== proposal.nodes[j])) {
      select.replaceChildren(...proposal.nodes.map((n) => el("option", { value: n }, n)));
    }
  }
}

function addEdge() {
  const cause = $("add-cause").value, effect = $("add-effect").value;
  $("accept-error").textContent = "";
  if (cause === effect) { $("accept-error").textContent = "an edge needs two different nodes"; return; }
  if (proposedEdges().some((e) => e.cause === cause && e.effect === effect)) return;
  edit((list) => [...list, [cause, effect]]);
}

async function accept(body) {
  $("accept-error").textContent = "";
  try {
    const answer = await api("accept", { discovery: state.discovery, session: null, ...body });
    dropDiscovery();
    opened(answer);
  } catch (err) {
    $("accept-error").textContent = err.message;
  }
}

async function acceptFile() {
  const file = $("proposal-graph").files[0];
  if (!file) { $("accept-error").textContent = "choose a graph file"; return; }
  $("accept-error").textContent = tooBig([file]) || "";
  if (!$("accept-error").textContent) await accept({ graph: await encodedFile(file) });
}

function dropDiscovery() {
  clearTimeout(pollTimer);
  state.discovery = null;
  state.edits = null;
  proposal = null;
  save();
  $("discovery").hidden = true;
  $("proposal-dag").replaceChildren();
  $("proposal-edges").replaceChildren();
}

async function download() {
  const error = $("download-error");
  error.textContent = "";
  try {
    const text = await api("samples", { interventions: interventionList(), n: Number($("download-n").value), seed: 0 }, true);
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "condfip-samples.csv" });
    document.body.appendChild(link);
    link.click();
    link.remove();
  } catch (err) {
    error.textContent = err.message;
  }
}

function start() {
  restore();
  $("upload-form").addEventListener("submit", upload);
  $("reset-button").addEventListener("click", () => {
    state.session = null; state.interventions = {}; state.row = 0;
    $("banner").hidden = true; $("upload-error").textContent = "";
    dropDiscovery(); load();
  });
  $("effect-button").addEventListener("click", estimateEffect);
  $("effect-target").addEventListener("change", () => { state.target = $("effect-target").value; save(); });
  $("cf-row").addEventListener("change", () => { state.row = Number($("cf-row").value) | 0; changed(false); });
  $("download-button").addEventListener("click", download);
  $("discover-button").addEventListener("click", startDiscovery);
  $("accept-button").addEventListener("click", () => accept({ edges: state.edits }));
  $("undo-edits").addEventListener("click", () => { state.edits = null; save(); drawProposal(); });
  $("add-edge").addEventListener("click", addEdge);
  $("proposal-graph-button").addEventListener("click", acceptFile);
  $("discard-discovery").addEventListener("click", dropDiscovery);
  load();
  pollDiscovery();
}

start();
