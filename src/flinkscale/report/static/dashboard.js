// flinkscale live dashboard: polls /api/state and redraws with plotly (served locally, no CDN).
//
// The server does the parsing and the colouring (flinkscale/report/dashboard.py); this script only draws.
// It asks /api/state?version=V every POLL_MS; the server answers {"unchanged": true} while no run file grew.
// Strings from the run (vertex names, reasons) go into the DOM through textContent, never innerHTML.
"use strict";

const POLL_MS = 1500;
// One job of the multi-job daemon: the server names that job's endpoint on <body data-api=...>.
const STATE_URL = document.body.dataset.api || "/api/state";
const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
const dashboard = { version: null, renderedVersion: null, vertices: 0, decisions: 0, lastOk: null };
window.flinkscaleDashboard = dashboard;

function utc(ts) {
  return new Date(ts * 1000).toISOString().substring(11, 19);
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number(value.toPrecision(digits || 3)).toString();
}

// Plotly annotations understand a few HTML tags; a vertex name must not be read as one.
function escapePlotly(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function wrap(text, width) {
  // Long tokens such as "TumblingEventTimeWindows(60000)" are cut too, so a label never spills out of its box.
  const words = [];
  String(text).split(/\s+/).forEach((word) => {
    for (let i = 0; i < word.length; i += width) words.push(word.substring(i, i + width));
  });
  const lines = [];
  let line = "";
  for (const word of words) {
    if (line && (line + " " + word).length > width) { lines.push(line); line = word; }
    else line = line ? line + " " + word : word;
  }
  if (line) lines.push(line);
  return lines.slice(0, 4).map(escapePlotly).join("<br>");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawGraph(graph) {
  const target = document.getElementById("job-graph");
  if (!graph || graph.nodes.length === 0) return;
  const halfWidth = 0.36, halfHeight = 0.3;
  const byId = {};
  graph.nodes.forEach((n) => { byId[n.id] = n; });
  const shapes = graph.nodes.map((n) => ({
    type: "rect", xref: "x", yref: "y", layer: "below",
    x0: n.x - halfWidth, x1: n.x + halfWidth, y0: n.y - halfHeight, y1: n.y + halfHeight,
    fillcolor: n.colour, line: { color: "#1f2933", width: 1.2 },
  }));
  const annotations = [];
  graph.nodes.forEach((n) => {
    const util = n.utilization === null ? "n/a" : Math.round(n.utilization * 100) + "%";
    annotations.push({
      x: n.x, y: n.y, xref: "x", yref: "y", showarrow: false, font: { size: 12, color: "#111" },
      text: "<b>" + wrap(n.name, 20) + "</b><br>p=" + n.parallelism + " · util " + util,
    });
  });
  graph.edges.forEach((e) => {
    const from = byId[e.source], to = byId[e.target];
    if (!from || !to) return;
    annotations.push({
      x: to.x - halfWidth, y: to.y, ax: from.x + halfWidth, ay: from.y, xref: "x", yref: "y", axref: "x", ayref: "y",
      showarrow: true, arrowhead: 2, arrowsize: 1.2, arrowwidth: 1.5, arrowcolor: "#52606d", text: "",
    });
    annotations.push({
      x: (from.x + to.x) / 2, y: (from.y + to.y) / 2 + 0.06, xref: "x", yref: "y", showarrow: false,
      text: escapePlotly(e.ship_strategy), font: { size: 11, color: "#52606d" }, yanchor: "bottom",
      bgcolor: "rgba(255,255,255,0.85)",
    });
  });
  const hover = {
    type: "scatter", mode: "markers", x: graph.nodes.map((n) => n.x), y: graph.nodes.map((n) => n.y),
    hoverinfo: "text", showlegend: false,
    text: graph.nodes.map((n) => [
      escapePlotly(n.name), "parallelism " + n.parallelism + " / max " + n.max_parallelism,
      "utilization " + fmt(n.utilization), "backpressured " + fmt(n.back_pressured_ratio),
      "in " + fmt(n.records_in_per_second) + " rec/s", "out " + fmt(n.records_out_per_second) + " rec/s",
      n.pending_records === null ? "" : "lag " + fmt(n.pending_records) + " records",
    ].filter(Boolean).join("<br>")),
    marker: {
      size: 40, opacity: 0, color: graph.nodes.map((n) => (n.utilization === null ? 0 : n.utilization)),
      cmin: 0, cmax: 1, colorscale: graph.colorscale, showscale: true,
      colorbar: { title: { text: "util" }, thickness: 12, len: 0.9, tickformat: ".0%" },
    },
  };
  const xs = graph.nodes.map((n) => n.x), ys = graph.nodes.map((n) => n.y);
  const layout = {
    margin: { l: 10, r: 10, t: 10, b: 10 }, shapes: shapes, annotations: annotations, hovermode: "closest",
    xaxis: { visible: false, range: [Math.min(...xs) - 0.5, Math.max(...xs) + 0.5], fixedrange: true },
    yaxis: { visible: false, range: [Math.min(...ys) - 0.55, Math.max(...ys) + 0.55], fixedrange: true },
    plot_bgcolor: "#fff", paper_bgcolor: "#fff",
  };
  Plotly.react(target, [hover], layout, PLOT_CONFIG);
  target.dataset.vertices = String(graph.nodes.length);
  dashboard.vertices = graph.nodes.length;
}

function timeAxis() {
  return { type: "date", title: { text: "time (UTC)" }, automargin: true };
}

function drawTimeline(timeline, decisions) {
  const t = timeline.timestamps.map((ts) => ts * 1000);
  const rescaleLines = decisions.filter((d) => d.rescale && d.applied).map((d) => ({
    type: "line", xref: "x", yref: "paper", x0: d.timestamp * 1000, x1: d.timestamp * 1000, y0: 0, y1: 1,
    line: { color: "#7b8794", width: 1, dash: "dot" },
  }));
  Plotly.react("rate-lag", [
    { x: t, y: timeline.source_records_in_per_second, name: "records in/s (sources)", mode: "lines+markers",
      line: { color: "#1f77b4" }, connectgaps: false },
    { x: t, y: timeline.source_lag_records, name: "lag (records)", yaxis: "y2", mode: "lines+markers",
      line: { color: "#d62728" }, connectgaps: false },
  ], {
    margin: { l: 60, r: 60, t: 10, b: 40 }, legend: { orientation: "h", y: 1.12 }, shapes: rescaleLines,
    xaxis: timeAxis(), yaxis: { title: { text: "records/s" }, rangemode: "tozero" },
    yaxis2: { title: { text: "records" }, overlaying: "y", side: "right", rangemode: "tozero" },
  }, PLOT_CONFIG);
  const vertexIds = Object.keys(timeline.vertices);
  Plotly.react("parallelism", vertexIds.map((id) => ({
    x: t, y: timeline.vertices[id].parallelism, name: timeline.vertices[id].name, mode: "lines",
    line: { shape: "hv" }, connectgaps: false,
  })), {
    margin: { l: 50, r: 10, t: 10, b: 40 }, legend: { orientation: "h", y: -0.3 },
    xaxis: timeAxis(), yaxis: { title: { text: "parallelism" }, rangemode: "tozero", dtick: 1 },
  }, PLOT_CONFIG);
  Plotly.react("utilization", vertexIds.map((id) => ({
    x: t, y: timeline.vertices[id].utilization, name: timeline.vertices[id].name, mode: "lines",
    connectgaps: false,
  })), {
    margin: { l: 50, r: 10, t: 10, b: 40 }, legend: { orientation: "h", y: -0.3 },
    xaxis: timeAxis(), yaxis: { title: { text: "busy (max subtask)" }, range: [0, 1.05], tickformat: ".0%" },
  }, PLOT_CONFIG);
}

function decisionItem(d) {
  const item = el("li", "decision outcome-" + d.outcome.replace(/ /g, "-"));
  item.dataset.timestamp = String(d.timestamp);
  const head = el("div");
  head.appendChild(el("span", "time", utc(d.timestamp)));
  head.appendChild(el("span", "badge", d.outcome));
  head.appendChild(document.createTextNode(" " + d.policy));
  if (d.rescale_seconds !== null) head.appendChild(el("span", "numbers", " · rescale took " + fmt(d.rescale_seconds) + " s"));
  if (d.shed_fraction > 0) head.appendChild(el("span", "numbers", " · shed " + Math.round(d.shed_fraction * 100) + "%"));
  item.appendChild(head);
  const changed = d.vertices.filter((v) => v.changed);
  changed.forEach((v) => {
    const line = el("div", "reason");
    line.appendChild(el("span", "change", v.vertex_name + ": " + v.current_parallelism + " → " + v.new_parallelism));
    line.appendChild(document.createTextNode(" — " + v.reason));
    item.appendChild(line);
  });
  if (d.blocked_reason) item.appendChild(el("div", "reason", "blocked: " + d.blocked_reason));
  if (d.error) item.appendChild(el("div", "reason", "error: " + d.error));
  if (changed.length === 0 && !d.blocked_reason && d.vertices.length > 0) {
    item.appendChild(el("div", "reason", d.vertices[0].vertex_name + ": " + d.vertices[0].reason));
  }
  const details = el("details");
  details.appendChild(el("summary", null, "all vertices and numbers"));
  d.vertices.forEach((v) => {
    const numbers = Object.entries(v.numbers).map(([k, n]) => k + "=" + fmt(n)).join(", ");
    details.appendChild(el("div", "reason", v.vertex_name + " (p " + v.current_parallelism + " → " + v.new_parallelism + "): " + v.reason));
    if (numbers) details.appendChild(el("div", "numbers", numbers));
  });
  item.appendChild(details);
  return item;
}

function drawLog(listId, entries, makeItem, emptyText) {
  const list = document.getElementById(listId);
  const open = new Set(Array.from(list.querySelectorAll("details[open]")).map((d) => d.parentNode.dataset.timestamp));
  const items = entries.map((entry) => {
    const item = makeItem(entry);
    const details = item.querySelector("details");
    if (details && open.has(item.dataset.timestamp)) details.open = true;
    return item;
  });
  list.replaceChildren(...(items.length ? items : [el("li", "empty", emptyText)]));
}

function eventItem(e) {
  const item = el("li", "event kind-" + e.kind);
  item.dataset.timestamp = String(e.timestamp);
  item.appendChild(el("span", "time", utc(e.timestamp)));
  item.appendChild(el("span", "badge", e.kind));
  item.appendChild(document.createTextNode(" " + e.message));
  return item;
}

function render(state) {
  const title = document.getElementById("job-title");
  if (state.job) {
    title.textContent = state.job.job_name + " · " + state.job.job_state + " · total parallelism " +
      state.job.total_parallelism + " · lag " + fmt(state.job.source_lag_records) + " records · last snapshot " +
      utc(state.job.timestamp) + " UTC";
  } else {
    title.textContent = "waiting for the first snapshot in " + state.run_dir;
  }
  drawGraph(state.graph);
  drawTimeline(state.timeline, state.decisions);
  drawLog("decision-log", state.decisions, decisionItem, "no decision yet");
  drawLog("event-log", state.events, eventItem, "no event yet");
  dashboard.decisions = state.decisions.length;
  const problems = document.getElementById("problems");
  problems.hidden = state.problems.length === 0;
  document.getElementById("problem-list").replaceChildren(...state.problems.map((p) => el("li", null, p)));
  dashboard.renderedVersion = state.version;
  document.body.dataset.state = "ready";
}

function stateUrl() {
  return STATE_URL + (dashboard.version === null ? "" : "?version=" + dashboard.version);
}

function received(state) {
  dashboard.version = state.version;
  if (!state.unchanged) render(state);
  dashboard.lastOk = Date.now();
}

pollState(stateUrl, received, POLL_MS);
