// mer serve: the page. Talks only to the JSON API under /api/ (see /docs).
// Charts: Chart.js (MIT); waveform and player: wavesurfer.js (BSD-3-Clause); both vendored in static/vendor.
"use strict";

const QUAD = {
  Q1: { words: "happy/excited", color: "#e6a100", v: 1, a: 1 },
  Q2: { words: "angry/tense", color: "#d1495b", v: -1, a: 1 },
  Q3: { words: "sad/depressed", color: "#3d5a98", v: -1, a: -1 },
  Q4: { words: "calm/relaxed", color: "#2a9d8f", v: 1, a: -1 },
};
const params = new URLSearchParams(location.search);
const state = { token: params.get("token"), jobs: new Map(), order: [], selected: null, sortKey: null, sortAsc: true,
                limits: { max_upload_mb: 200, max_files: 50, max_jobs: 100, max_request_mb: 10000 }, waiting: [], sending: false,
                ws: null, playhead: 0, markerIndex: -1, planeChart: null, timeChart: null, overview: null,
                library: [], region: null, drag: null, libChart: null };
window.merState = state; // for the browser test and for curious users

const $ = (s) => document.querySelector(s);
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "" : Number(x).toFixed(d));
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function withToken(url) {
  return state.token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(state.token) : url;
}
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
  return body;
}
function say(text) { $("#message").textContent = text || ""; }

// ---------------------------------------------------------------- mood words
// A model with mood words (the default, version 3) gives each of AllMusic's mood words a calibrated
// probability: the chance that AllMusic's editors would tag the song with it. Their tags are sparse,
// so these are leanings, not facts (docs/benchmarks.md, "Mood words"); bars are on [0, 1], as they are.
const TOP_MOODS = 5;
const pct = (p) => Math.round(100 * p) + "%";
const moodBar = (p) => `<span class="bar" aria-hidden="true"><i style="width:${(100 * p).toFixed(1)}%"></i></span>`;
// [[word, probability], ...], most probable first (ties in the given order), the first k
const topMoods = (moods, k = TOP_MOODS) => Object.entries(moods || {}).sort((a, b) => b[1] - a[1]).slice(0, k);

// ---------------------------------------------------------------- the plane, drawn by a Chart.js plugin
const quadrantBackground = {
  id: "quadrants",
  beforeDraw(chart) {
    const { ctx, chartArea: a, scales: { x, y } } = chart;
    if (!a) return;
    ctx.save();
    for (const [name, q] of Object.entries(QUAD)) {
      const x0 = x.getPixelForValue(q.v > 0 ? 0 : -1), x1 = x.getPixelForValue(q.v > 0 ? 1 : 0);
      const y0 = y.getPixelForValue(q.a > 0 ? 1 : 0), y1 = y.getPixelForValue(q.a > 0 ? 0 : -1);
      ctx.fillStyle = q.color + "14";
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      ctx.fillStyle = q.color;
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText(name + " " + q.words, (x0 + x1) / 2, q.a > 0 ? y0 + 16 : y1 - 8);
    }
    ctx.strokeStyle = "#999";
    ctx.beginPath();
    ctx.moveTo(x.getPixelForValue(0), a.top); ctx.lineTo(x.getPixelForValue(0), a.bottom);
    ctx.moveTo(a.left, y.getPixelForValue(0)); ctx.lineTo(a.right, y.getPixelForValue(0));
    ctx.stroke();
    ctx.restore();
  },
};
// The library's region (value coordinates {x0, x1, y0, y1}): while a drag is under way, the box being
// dragged (dashed); after it, the region kept (solid), until "clear region". Under the points.
const regionBox = {
  id: "region",
  beforeDatasetsDraw(chart) {
    const g = chart.$region ? chart.$region() : null, { ctx, chartArea: a, scales: { x, y } } = chart;
    if (!g || !a) return;
    const x0 = x.getPixelForValue(g.x0), x1 = x.getPixelForValue(g.x1), y0 = y.getPixelForValue(g.y1), y1 = y.getPixelForValue(g.y0);
    ctx.save();
    ctx.beginPath(); ctx.rect(a.left, a.top, a.right - a.left, a.bottom - a.top); ctx.clip();
    ctx.fillStyle = "rgba(0, 102, 204, 0.12)";
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    ctx.strokeStyle = "#0066cc"; ctx.lineWidth = 2;
    ctx.setLineDash(g.dragging ? [6, 4] : []);
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.restore();
  },
};
const planeScales = {
  x: { type: "linear", suggestedMin: -1, suggestedMax: 1, title: { display: true, text: "valence (negative → positive)" } },
  y: { type: "linear", suggestedMin: -1, suggestedMax: 1, title: { display: true, text: "arousal (calm → excited)" } },
};

function makePlane(canvas, datasets, onClick) {
  return new Chart(canvas, {
    type: "scatter", data: { datasets }, plugins: [quadrantBackground, regionBox],
    options: { animation: false, aspectRatio: 1, scales: planeScales, onClick,
               plugins: { legend: { labels: { boxWidth: 10 } }, tooltip: { callbacks: { label: (c) => c.raw.label || `(${fmt(c.raw.x, 2)}, ${fmt(c.raw.y, 2)})` } } } },
  });
}

// Points {x, y, quadrant, ...} as one dataset per quadrant, so that the legend shows each quadrant's
// colour and words, as the dots are coloured (points of no known quadrant are left out).
function quadrantDatasets(points, pointRadius) {
  return Object.entries(QUAD).map(([q, { words, color }]) => ({
    label: `${q} ${words}`, data: points.filter((p) => p.quadrant === q), backgroundColor: color, borderColor: color, pointRadius }));
}
// A plane of quadrantDatasets: made on first use, then its data replaced (legend toggles kept).
function quadrantPlane(chart, canvas, points, pointRadius, onPick) {
  const datasets = quadrantDatasets(points, pointRadius);
  if (chart) {
    datasets.forEach((d, i) => { chart.data.datasets[i].data = d.data; });
    chart.update("none");
    return chart;
  }
  const made = makePlane(canvas, datasets, (evt, els) => { if (els.length) onPick(made.data.datasets[els[0].datasetIndex].data[els[0].index].id); });
  return made;
}

// ---------------------------------------------------------------- the curve, drawn for what it is worth
// The 2 Hz curve's second-by-second movement does not follow listeners (docs/benchmarks.md, "The 2 Hz
// curve against listeners"), so the page draws it smoothed unless "raw 2 Hz values" is ticked: a centred
// moving mean over SMOOTH steps, the ends padded with the first and last value, exactly as
// mer.plot.moving_mean (mer predict --plot) and that benchmark compute it.
const SMOOTH = 21; // steps of 0.5 s: 10.5 s
function movingMean(xs, k = SMOOTH) {
  const h = Math.floor(k / 2), last = xs.length - 1;
  return xs.map((_, i) => {
    let sum = 0;
    for (let j = i - h; j <= i + h; j++) sum += xs[Math.min(last, Math.max(0, j))];
    return sum / k;
  });
}
function shownCurve(r) {
  if ($("#raw").checked) return { v: r.valence_curve, a: r.arousal_curve, what: "raw 2 Hz" };
  return { v: movingMean(r.valence_curve), a: movingMean(r.arousal_curve), what: "10.5 s mean" };
}

// ---------------------------------------------------------------- uploads and jobs
// A big drop is sent in parts that fit the server's limits (files per upload, jobs at once);
// the rest waits in the browser, shown as "waiting", and goes as earlier files finish.
let local = 0;
function upload(fileList) {
  say("");
  for (const f of Array.from(fileList)) {
    const id = "local-" + local++;
    const tooBig = f.size > state.limits.max_upload_mb * 1024 * 1024;
    state.jobs.set(id, { id, name: f.name, file: f, state: tooBig ? "error" : "waiting", progress: 0, result: null,
                         error: tooBig ? `${f.name}: larger than ${state.limits.max_upload_mb} MB (the server's limit)` : null });
    state.order.push(id);
    if (!tooBig) state.waiting.push(id);
  }
  $("#batch").hidden = false;
  renderTable();
  sendWaiting();
}

// The next upload: at most `room` files and the server's bytes per upload (at least one file).
function takePart(room) {
  const most = (state.limits.max_request_mb || Infinity) * 1024 * 1024;
  let n = 0, bytes = 0;
  while (n < Math.min(room, state.waiting.length)) {
    const size = state.jobs.get(state.waiting[n]).file.size;
    if (n > 0 && bytes + size > most) break;
    bytes += size; n += 1;
  }
  return state.waiting.splice(0, n);
}

async function sendWaiting() {
  if (state.sending) return;
  state.sending = true;
  try {
    while (state.waiting.length) {
      const active = [...state.jobs.values()].filter((j) => j.state === "queued" || j.state === "running").length;
      const room = Math.min(state.limits.max_files, state.limits.max_jobs - active);
      if (room <= 0) { await new Promise((r) => setTimeout(r, 500)); continue; }
      const part = takePart(room);
      const form = new FormData();
      part.forEach((id) => form.append("files", state.jobs.get(id).file, state.jobs.get(id).name));
      let res;
      try {
        res = await api("/api/predict", { method: "POST", body: form });
      } catch (e) {
        part.forEach((id) => Object.assign(state.jobs.get(id), { state: "error", error: "upload refused: " + e.message }));
        renderTable();
        continue;
      }
      res.jobs.forEach((j, i) => { // the local entry becomes the server's job (same row)
        const job = state.jobs.get(part[i]);
        state.jobs.delete(part[i]);
        Object.assign(job, { id: j.id, state: "queued" });
        state.jobs.set(j.id, job);
        state.order[state.order.indexOf(part[i])] = j.id;
        if (state.selected === part[i]) state.selected = j.id;
      });
      if (!state.selected) select(res.jobs[0].id);
      renderTable();
      poll();
    }
  } finally { state.sending = false; }
}

let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    while ([...state.jobs.values()].some((j) => j.state === "queued" || j.state === "running")) {
      for (const job of state.jobs.values()) {
        if (job.state !== "queued" && job.state !== "running") continue;
        try {
          const s = await api("/api/jobs/" + job.id);
          const finished = s.state === "done" || s.state === "error";
          Object.assign(job, { state: s.state, progress: s.progress, result: s.result, error: s.error, warnings: s.warnings });
          if (finished) { updateOverview(); if (state.selected === job.id) renderDetail(); }
        } catch (e) { job.state = "error"; job.error = e.message; }
      }
      renderTable();
      await new Promise((r) => setTimeout(r, 400));
    }
  } finally { polling = false; renderTable(); if (state.waiting.length) sendWaiting(); }
}

function cell(job, key) {
  const r = job.result || {};
  if (key === "name") return job.name;
  if (key === "state") return job.state;
  if (key === "confidence") return r.confidence;
  return r[key];
}

let tableHtml = "";
function renderTable() {
  const ids = [...state.order];
  if (state.sortKey) {
    const k = state.sortKey, dir = state.sortAsc ? 1 : -1;
    ids.sort((a, b) => {
      const x = cell(state.jobs.get(a), k), y = cell(state.jobs.get(b), k);
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      return (x > y ? 1 : x < y ? -1 : 0) * dir;
    });
  }
  const rows = ids.map((id) => {
    const j = state.jobs.get(id), r = j.result || {};
    const status = j.state === "done" ? "done" : j.state === "error" ? "error" : j.state === "waiting" ? "waiting"
      : `<span class="bar"><i style="width:${Math.round(100 * j.progress)}%"></i></span> ${j.state}`;
    const tail = j.state === "error" ? `<td class="error" colspan="5">${esc(j.error || "failed")}</td>`
      : `<td>${fmt(r.valence)}</td><td>${fmt(r.arousal)}</td>
         <td class="quad">${r.quadrant ? `<span class="q ${r.quadrant}">${r.quadrant}</span> <span class="words">${esc(r.quadrant_words)}</span>` : ""}</td>
         <td>${r.confidence !== undefined ? Math.round(100 * r.confidence) + "%" : ""}</td><td>${fmt(r.duration, 1)}</td>`;
    // a row is a control: Tab reaches it, Enter or Space shows its song (see init), aria-current marks the one shown
    return `<tr data-id="${id}" tabindex="0" class="${id === state.selected ? "selected" : ""} ${j.state}"${id === state.selected ? ' aria-current="true"' : ""}><td class="name" title="${esc(j.name)}">${esc(j.name)}</td><td class="state">${status}</td>${tail}</tr>`;
  });
  // the rows are rebuilt only when they changed (a poll that changed nothing must not swap a row from
  // under a finger or pointer mid-tap), and the row that had the focus keeps it
  const html = rows.join("");
  if (html === tableHtml) return sortMarks();
  const body = $("#table tbody"), had = document.activeElement, focused = had && body.contains(had) ? had.closest("tr") : null;
  body.innerHTML = tableHtml = html;
  if (focused) { const again = rowOf(focused.dataset.id); if (again) again.focus({ preventScroll: true }); }
  sortMarks();
}
const rowOf = (id) => [...$("#table tbody").rows].find((tr) => tr.dataset.id === id);
function sortMarks() {
  document.querySelectorAll("#table th").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.key === state.sortKey);
    th.classList.toggle("asc", th.dataset.key === state.sortKey && state.sortAsc);
  });
}

function updateOverview() {
  const points = [...state.jobs.values()].filter((j) => j.result).map((j) => ({
    x: j.result.valence, y: j.result.arousal, quadrant: j.result.quadrant, id: j.id, label: `${j.name}: ${j.result.quadrant}` }));
  state.overview = quadrantPlane(state.overview, $("#overview"), points, 5, (id) => select(id, true));
}

// ---------------------------------------------------------------- one song
// `reveal`: the user picked it (a row tapped, clicked or entered; a dot on "All files"), so the song's
// panel is brought into view where it is out of sight (on a phone it sits far below the table; on a
// desktop it is usually in view already, and then nothing moves) and the focus goes to its title, so
// that a keyboard or screen-reader user lands on what changed.
function select(id, reveal = false) {
  state.selected = id;
  renderTable();
  renderDetail();
  if (reveal) revealDetail();
}

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;
function inSight(el, enough = 120) { // its top edge on screen, and enough of it below that edge
  const r = el.getBoundingClientRect(), h = window.innerHeight || document.documentElement.clientHeight;
  return r.top >= 0 && r.top <= h - Math.min(enough, r.height);
}
function revealDetail() {
  const panel = $("#detail");
  if (panel.hidden) return;
  $("#title").focus({ preventScroll: true }); // before the scroll: a focus that scrolled would cut it short
  if (!inSight(panel)) panel.scrollIntoView({ behavior: reducedMotion() ? "auto" : "smooth", block: "start" });
}

function renderDetail() {
  const job = state.jobs.get(state.selected);
  if (!job) return;
  $("#detail").hidden = false;
  $("#title").textContent = job.name;
  if (!job.result) {
    $("#summary").innerHTML = job.state === "error" ? `<span class="error">${esc(job.error)}</span>` : "predicting…";
    $("#moods-box").hidden = true;
    return;
  }
  const r = job.result;
  $("#summary").innerHTML = `<span class="q ${r.quadrant}">${r.quadrant}</span> ${esc(r.quadrant_words)}` +
    (r.confidence !== undefined ? ` (${Math.round(100 * r.confidence)}%)` : "") +
    ` — valence ${fmt(r.valence)}, arousal ${fmt(r.arousal)}, ${fmt(r.duration, 1)} s` +
    (job.warnings && job.warnings.length ? ` <span class="hint">(${esc(job.warnings.join("; "))})</span>` : "");
  loadAudio(job);
  drawCurves(r);
  $("#probs").innerHTML = ["Q1", "Q2", "Q3", "Q4"].filter((q) => r["p_" + q.toLowerCase()] !== undefined).map((q) => {
    const p = r["p_" + q.toLowerCase()];
    return `<div class="prob"><span class="q ${q}">${q}</span><span class="bar"><i style="width:${Math.round(100 * p)}%;background:${QUAD[q].color}"></i></span>${Math.round(100 * p)}% ${QUAD[q].words}</div>`;
  }).join("") || '<span class="hint">this model gives no quadrant probabilities</span>';
  // the top mood words, each "gentle 41%" beside its bar; nothing for a model without mood words
  const top = topMoods(r.moods);
  $("#moods-box").hidden = !top.length;
  $("#moods").innerHTML = top.map(([w, p]) =>
    `<li class="prob"><span class="word">${esc(w)}</span>${moodBar(p)}<span class="pct">${pct(p)}</span></li>`).join("");
  $("#tags").textContent = r.tags ? Object.keys(r.tags).join(", ") : "";
}

function loadAudio(job) {
  if (state.ws && state.wsJob === job.id) return;
  if (state.ws) state.ws.destroy();
  state.wsJob = job.id;
  state.playhead = 0;
  state.ws = WaveSurfer.create({ container: "#wave", height: 80, waveColor: "#9bb", progressColor: "#2a9d8f",
                                 url: job.file ? URL.createObjectURL(job.file) : undefined });
  const moved = () => onTime(state.ws.getCurrentTime());
  state.ws.on("timeupdate", moved);
  state.ws.on("interaction", moved);
  state.ws.on("play", () => ($("#play").textContent = "❚❚ pause"));
  state.ws.on("pause", () => ($("#play").textContent = "▶ play"));
  state.ws.on("error", () => say("The browser cannot play this file's format; the numbers above are still right."));
}

function stepAt(times, t) { // index of the 0.5 s step that contains time t (step i covers [0.5 i, 0.5 (i + 1)))
  return Math.max(0, Math.min(times.length - 1, Math.floor(t / 0.5)));
}

function onTime(t) {
  state.playhead = t;
  $("#clock").textContent = `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`;
  const job = state.jobs.get(state.selected);
  if (!job || !job.result || !state.planeChart) return;
  const r = job.result, i = stepAt(r.times, t);
  state.markerIndex = i;
  state.planeChart.data.datasets[2].data = [{ x: state.curve.v[i], y: state.curve.a[i], label: `now: ${fmt(t, 1)} s` }];
  state.planeChart.update("none");
  if (state.timeChart) state.timeChart.update("none");
}

// The plane and the chart of one song, from the curve as shown (smoothed or raw: shownCurve).
function drawCurves(r) {
  state.curve = shownCurve(r);
  drawPlane(r);
  drawTimeline(r);
  onTime(state.playhead);
}

function drawPlane(r) {
  const c = state.curve;
  const traj = r.times.map((t, i) => ({ x: c.v[i], y: c.a[i], t, label: `${fmt(t, 1)} s` }));
  const datasets = [
    { label: `trajectory (${c.what})`, data: traj, showLine: true, borderColor: "#7a8", backgroundColor: "#7a8", pointRadius: 2, borderWidth: 1.2 },
    { label: "whole song", data: [{ x: r.valence, y: r.arousal, label: "whole song" }], pointStyle: "star", pointRadius: 12, borderColor: "#d00", backgroundColor: "#d00", borderWidth: 2 },
    { label: "now", data: [], pointRadius: 8, backgroundColor: "#222" },
  ];
  if (state.planeChart) state.planeChart.destroy();
  state.planeChart = makePlane($("#plane"), datasets, (evt, els) => {
    const hit = els.find((e) => e.datasetIndex === 0);
    if (hit && state.ws) {
      const t = Math.max(0, r.times[hit.index] - 0.5);
      state.ws.setTime(t);
      onTime(t);
    }
  });
  state.planeChart.options.interaction = { mode: "nearest", intersect: false };
}

const playheadLine = {
  id: "playhead",
  afterDraw(chart) {
    const { ctx, chartArea: a, scales: { x } } = chart;
    if (!a) return;
    const px = x.getPixelForValue(state.playhead);
    ctx.save(); ctx.strokeStyle = "#222"; ctx.beginPath(); ctx.moveTo(px, a.top); ctx.lineTo(px, a.bottom); ctx.stroke(); ctx.restore();
  },
};

// Valence and arousal over time as shown (datasets 0 and 1), and the whole song's values as flat
// dashed lines (2 and 3): what the curve must beat. The y axis is the scale, [-1, 1], whatever the data.
function drawTimeline(r) {
  if (state.timeChart) state.timeChart.destroy();
  const c = state.curve, t = r.times, t0 = t.length ? t[0] : 0, t1 = t.length ? t[t.length - 1] : r.duration;
  // no fill colour: the legend's flat boxes are then drawn as their lines, dashed or not
  const line = (label, color, data, dash) => ({ label, data, borderColor: color, backgroundColor: "transparent", pointRadius: 0,
                                                borderWidth: dash ? 1.5 : 2, borderDash: dash ? [6, 4] : [] });
  const curve = (ys) => t.map((x, i) => ({ x, y: ys[i] })), flat = (y) => [{ x: t0, y }, { x: t1, y }];
  state.timeChart = new Chart($("#timeline"), {
    type: "line", plugins: [playheadLine],
    data: { datasets: [
      line(`valence (${c.what})`, "#3d5a98", curve(c.v)), line(`arousal (${c.what})`, "#e6a100", curve(c.a)),
      line("valence, whole song", "#3d5a98", flat(r.valence), true), line("arousal, whole song", "#e6a100", flat(r.arousal), true),
    ] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { labels: { boxWidth: 26, boxHeight: 1, font: { size: 11 } } } },
               scales: { x: { type: "linear", min: 0, max: t1, title: { display: true, text: "time (s)" } }, y: { min: -1, max: 1 } },
               onClick: (evt) => { if (state.ws) { const t = state.timeChart.scales.x.getValueForPixel(evt.x); state.ws.setTime(Math.max(0, t)); onTime(Math.max(0, t)); } } },
  });
}

// ---------------------------------------------------------------- downloads
function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
function current() { const j = state.jobs.get(state.selected); return j && j.result ? j : null; }
const stem = (name) => name.replace(/\.[^.]*$/, "");

function csvOf(r) {
  const cols = ["path", "valence", "arousal", "quadrant", "quadrant_words", "duration", "p_q1", "p_q2", "p_q3", "p_q4", "confidence", "model", "weights_sha1"];
  const q = (v) => (v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const curve = ["time,valence,arousal", ...r.times.map((t, i) => `${t},${r.valence_curve[i]},${r.arousal_curve[i]}`)];
  return cols.join(",") + "\n" + cols.map((c) => q(r[c])).join(",") + "\n\n" + curve.join("\n") + "\n";
}

function svgOf(r, c) { // the plane as drawn: c is the curve as shown (shownCurve)
  const S = 400, P = (v) => ((v + 1) / 2) * S, Y = (a) => S - P(a);
  const pts = r.times.map((t, i) => `${P(c.v[i]).toFixed(1)},${Y(c.a[i]).toFixed(1)}`).join(" ");
  const labels = Object.entries(QUAD).map(([n, q]) => `<text x="${q.v > 0 ? S * 0.75 : S * 0.25}" y="${q.a > 0 ? 20 : S - 10}" text-anchor="middle" font-size="12" fill="${q.color}">${n} ${q.words}</text>`).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}" viewBox="0 0 ${S} ${S}"><rect width="${S}" height="${S}" fill="#fff" stroke="#999"/>` +
    `<line x1="${S / 2}" y1="0" x2="${S / 2}" y2="${S}" stroke="#999"/><line x1="0" y1="${S / 2}" x2="${S}" y2="${S / 2}" stroke="#999"/>${labels}` +
    `<polyline points="${pts}" fill="none" stroke="#7a8" stroke-width="1.2"/><circle cx="${P(r.valence)}" cy="${Y(r.arousal)}" r="6" fill="#d00"/>` +
    `<text x="6" y="${S / 2 - 6}" font-size="10" fill="#666">valence →</text><text x="${S / 2 + 6}" y="12" font-size="10" fill="#666">↑ arousal</text></svg>`;
}

// ---------------------------------------------------------------- the library
const LIST_MOST = 200; // songs in the list (the plane shows them all)
async function loadLibrary() {
  const { songs } = await api("/api/library/songs");
  state.library = songs;
  $("#library").hidden = false;
  moodChoices();
  drawLibrary();
}
// The mood words the library's songs carry, alphabetically, as the select's choices (the one chosen
// kept); a library indexed without them gets a note instead of the select.
function moodChoices() {
  const words = new Set(), sel = $("#lib-mood"), chosen = sel.value;
  state.library.forEach((s) => Object.keys(s.moods || {}).forEach((w) => words.add(w)));
  const sorted = [...words].sort();
  sel.innerHTML = '<option value="">none (the library\'s order)</option>' +
    sorted.map((w) => `<option value="${esc(w)}">${esc(w)}</option>`).join("");
  sel.value = words.has(chosen) ? chosen : "";
  $("#lib-mood-top").disabled = !sel.value;
  $("#lib-moods").hidden = !sorted.length;
  $("#lib-moods-none").hidden = sorted.length > 0 || !state.library.length;
}
const songs_ = (n) => `${n} song${n === 1 ? "" : "s"}`;
// What the list holds, and why it is not the whole library: "(29 of 60 songs: in the region; Q1, Q4 off)",
// "(3 of 60 songs: Q1 off; gentle among their top 5 words)". `why`: the filters that left songs out.
function libraryCount(shown, why) {
  const total = state.library.length;
  let text = shown === total ? songs_(total) : `${shown} of ${songs_(total)}` + (why.length ? ": " + why.join("; ") : "");
  if (shown > LIST_MOST) text += `; the list shows the first ${LIST_MOST}`;
  return `(${text})`;
}
const quadrantsOn = () => new Set([...document.querySelectorAll("#library input[name=quadrant]:checked")].map((c) => c.value));
const moodChosen = () => $("#lib-mood").value;
// The songs listed, in the list's order, and why the others are not: the quadrant ticks and the region
// filter; a chosen mood word orders them, most probable first, leaves out songs without mood words and,
// when "top 5" is ticked, the songs that do not have the word among their top 5.
function libraryVisible() {
  const on = quadrantsOn(), g = state.region, word = moodChosen(), why = [];
  let songs = state.library.filter((s) => on.has(s.quadrant) && (!g || (s.valence >= g.x0 && s.valence <= g.x1 && s.arousal >= g.y0 && s.arousal <= g.y1)));
  if (g) why.push("in the region");
  const off = Object.keys(QUAD).filter((q) => !on.has(q));
  if (off.length) why.push(off.join(", ") + " off");
  if (word) {
    const known = songs.filter((s) => s.moods && typeof s.moods[word] === "number");
    if (known.length < songs.length) why.push(`${songs_(songs.length - known.length)} without mood words`);
    songs = known;
    if ($("#lib-mood-top").checked) {
      songs = songs.filter((s) => topMoods(s.moods).some(([w]) => w === word));
      why.push(`${word} among their top ${TOP_MOODS} words`);
    }
    songs = songs.slice().sort((a, b) => b.moods[word] - a.moods[word] || a.id - b.id);
  }
  return { songs, why };
}
// A dot's size on the plane when a mood word is chosen: its probability's square root (0: 2 px, 1: 11 px)
const moodRadius = (c) => (c.raw && typeof c.raw.p === "number" ? 2 + 9 * Math.sqrt(c.raw.p) : 3);
function drawLibrary() {
  const { songs, why } = libraryVisible(), word = moodChosen();
  const points = songs.map((s) => {
    const p = word ? s.moods[word] : undefined;
    return { x: s.valence, y: s.arousal, quadrant: s.quadrant, id: s.id, p, label: s.name + (word ? `: ${word} ${pct(p)}` : "") };
  });
  const first = !state.libChart, on = quadrantsOn();
  state.libChart = quadrantPlane(state.libChart, $("#libplane"), points, 3, (id) => { if (!state.libChart.$dragged) playSong(id); });
  if (first) {
    enableRegion(state.libChart);
    state.libChart.options.plugins.legend.onClick = (e, item) => {
      const box = document.querySelector(`#library input[value="${item.text.slice(0, 2)}"]`);
      if (box) { box.checked = !box.checked; drawLibrary(); }
    };
  }
  // the legend says what the ticks say (struck through when off), and a click on it ticks or unticks them
  state.libChart.data.datasets.forEach((d, i) => {
    state.libChart.setDatasetVisibility(i, on.has(d.label.slice(0, 2)));
    d.pointRadius = word ? moodRadius : 3; // with a mood word, the likelier songs' dots are the bigger
    d.pointHoverRadius = word ? (c) => moodRadius(c) + 1 : 4;
  });
  state.libChart.update("none");
  $("#lib-count").textContent = libraryCount(songs.length, why);
  $("#lib-clear").disabled = !state.region;
  // each song by its name ("Artist - Title" from its tags, else its file name: the server's display_name), its path on
  // hover; with a mood word, its probability first ("41%" and a bar on [0, 1]); Enter or Space plays it, as a click does
  $("#lib-list").setAttribute("aria-label", word ? `songs, most likely ${word} first` : "songs");
  $("#lib-list").innerHTML = songs.slice(0, LIST_MOST).map((s) => {
    const p = word ? `<span class="lp" title="${esc(word)}: ${pct(s.moods[word])}">${moodBar(s.moods[word])}<span class="pct">${pct(s.moods[word])}</span></span>` : "";
    return `<li data-id="${s.id}" tabindex="0" title="${esc(s.path)}">${p}<span class="q ${s.quadrant}">${s.quadrant}</span> ${esc(s.name)}</li>`;
  }).join("");
}
function playSong(id) {
  const s = state.library.find((x) => x.id === id);
  const audio = $("#lib-audio");
  audio.src = withToken("/api/library/audio/" + id);
  audio.play().catch(() => {});
  const words = s ? topMoods(s.moods, 3).map(([w, p]) => `${w} ${pct(p)}`) : [];
  $("#lib-now").textContent = s ? `${s.name}: ${s.quadrant}, valence ${fmt(s.valence)}, arousal ${fmt(s.arousal)}` +
    (words.length ? `; mood words ${words.join(", ")}` : "") : "";
}
// A drag with the mouse (or a pen) on the plane: the box is drawn as it grows (state.drag) and, let go,
// kept as the region (state.region), drawn until "clear region"; a drag may end outside the plane
// (the box stops at the axes' ends). A short move is a click (a song played), not a region; a drag that
// ends on a dot does not play it. Touch is left to scrolling the page.
function enableRegion(chart) {
  let start = null;
  const canvas = chart.canvas;
  const clamp = (v, s) => Math.max(s.min, Math.min(s.max, v));
  const at = (e) => {
    const box = canvas.getBoundingClientRect(), { x, y } = chart.scales;
    return { x: clamp(x.getValueForPixel(e.clientX - box.left), x), y: clamp(y.getValueForPixel(e.clientY - box.top), y) };
  };
  const boxOf = (a, b) => ({ x0: Math.min(a.x, b.x), x1: Math.max(a.x, b.x), y0: Math.min(a.y, b.y), y1: Math.max(a.y, b.y) });
  const big = (a, b) => Math.abs(b.x - a.x) + Math.abs(b.y - a.y) > 0.1;
  chart.$region = () => state.drag || state.region;
  canvas.addEventListener("pointerdown", (e) => {
    chart.$dragged = false;
    if (e.pointerType === "touch" || e.button !== 0) return;
    start = at(e);
    e.preventDefault(); // no text selected on the way
  });
  window.addEventListener("pointermove", (e) => {
    if (!start) return;
    const now = at(e);
    state.drag = big(start, now) ? { ...boxOf(start, now), dragging: true } : null;
    chart.draw();
  });
  const end = (e) => {
    if (!start) return;
    const from = start, to = at(e), drawn = state.drag;
    start = null;
    state.drag = null;
    if (e.type === "pointerup" && big(from, to)) {
      state.region = boxOf(from, to);
      chart.$dragged = true;
      drawLibrary();
    } else if (drawn) chart.draw();
  };
  window.addEventListener("pointerup", end);
  window.addEventListener("pointercancel", end);
}

// ---------------------------------------------------------------- wiring
function init() {
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => upload(e.dataTransfer.files));
  $("#files").addEventListener("change", (e) => { upload(e.target.files); e.target.value = ""; });
  $("#table tbody").addEventListener("click", (e) => { const tr = e.target.closest("tr"); if (tr) select(tr.dataset.id, true); });
  $("#table tbody").addEventListener("keydown", (e) => { // Enter or Space: show it; up and down: the next row
    const tr = e.target.closest("tr");
    if (!tr || e.target !== tr) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(tr.dataset.id, true); }
    const next = e.key === "ArrowDown" ? tr.nextElementSibling : e.key === "ArrowUp" ? tr.previousElementSibling : null;
    if (next) { e.preventDefault(); next.focus(); }
  });
  document.querySelectorAll("#table th").forEach((th) => th.addEventListener("click", () => {
    state.sortAsc = state.sortKey === th.dataset.key ? !state.sortAsc : true;
    state.sortKey = th.dataset.key;
    renderTable();
  }));
  $("#play").addEventListener("click", () => state.ws && state.ws.playPause());
  $("#dl-json").addEventListener("click", () => { const j = current(); if (j) download(stem(j.name) + ".json", new Blob([JSON.stringify(j.result, null, 2)], { type: "application/json" })); });
  $("#dl-csv").addEventListener("click", () => { const j = current(); if (j) download(stem(j.name) + ".csv", new Blob([csvOf(j.result)], { type: "text/csv" })); });
  $("#dl-png").addEventListener("click", () => { const j = current(); if (j && state.planeChart) { const a = document.createElement("a"); a.href = state.planeChart.toBase64Image(); a.download = stem(j.name) + ".png"; a.click(); } });
  $("#dl-svg").addEventListener("click", () => { const j = current(); if (j) download(stem(j.name) + ".svg", new Blob([svgOf(j.result, state.curve)], { type: "image/svg+xml" })); });
  document.querySelectorAll("#library input").forEach((c) => c.addEventListener("change", drawLibrary));
  $("#raw").addEventListener("change", () => { const j = current(); if (j) drawCurves(j.result); });
  $("#lib-clear").addEventListener("click", () => { state.region = null; drawLibrary(); });
  $("#lib-list").addEventListener("click", (e) => { const li = e.target.closest("li"); if (li) playSong(Number(li.dataset.id)); });
  $("#lib-list").addEventListener("keydown", (e) => {
    const li = e.target.closest("li");
    if (li && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); playSong(Number(li.dataset.id)); }
  });
  $("#lib-mood").addEventListener("change", () => { $("#lib-mood-top").disabled = !moodChosen(); drawLibrary(); });
  api("/api/models").then((m) => {
    if (m.limits) state.limits = m.limits;
    $("#model").textContent = `model ${m.current.model} v${m.current.model_version} (${m.current.weights_sha1.slice(0, 12)})`;
    if (m.library) loadLibrary().catch((e) => say("Library: " + e.message));
  }).catch((e) => say(e.message));
}
document.addEventListener("DOMContentLoaded", init);
