"""The web page of ``deepvideo serve``: plain HTML, CSS and JavaScript, no external resources.

Drop a video (or pick one), it is uploaded to ``POST /jobs`` with upload progress, the job is
polled for its decoding / prediction progress, then the page shows the top-k table, the
timeline (the smoothed top class of every window, drawn on a canvas) and the video with the
prediction of the window at the current playback time under it. Kept as strings in this module
so the page ships with the package.
"""

INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deepvideo</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<h1>deepvideo</h1>
<section id="controls">
  <label>Model <select id="model"></select></label>
  <label>Window <input id="window" size="5"></label>
  <label>Stride <input id="stride" size="5"></label>
  <label>Token <input id="token" type="password" size="12" placeholder="if required"></label>
</section>
<div id="drop" tabindex="0">Drop a video here or <label class="pick">choose a file
  <input id="file" type="file" accept="video/*"></label></div>
<div id="status" role="status"></div>
<progress id="progress" max="1" value="0" hidden></progress>
<div id="error" role="alert" hidden></div>
<section id="result" hidden>
  <div id="player">
    <video id="video" controls muted playsinline></video>
    <div id="current">-</div>
  </div>
  <table id="topk"><thead><tr><th>#</th><th>class</th><th>probability</th></tr></thead><tbody></tbody></table>
  <h2>Timeline</h2>
  <canvas id="timeline" width="900" height="120"></canvas>
  <div id="legend"></div>
</section>
<script src="/app.js"></script>
</body>
</html>
"""

STYLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 960px; color: #222; }
#controls label { margin-right: 1em; }
#drop { border: 2px dashed #888; border-radius: 8px; padding: 2.5em; text-align: center; margin: 1em 0; }
#drop.over { background: #eef6ff; border-color: #36c; }
.pick { color: #36c; text-decoration: underline; cursor: pointer; }
.pick input { position: absolute; width: 1px; height: 1px; opacity: 0; }
#progress { width: 100%; }
#error { color: #b00; font-weight: bold; margin: 0.5em 0; }
#player { display: inline-block; vertical-align: top; margin-right: 1.5em; }
#video { max-width: 480px; max-height: 320px; background: #000; display: block; }
#current { font-size: 1.2em; padding: 0.3em 0; }
#topk { display: inline-table; border-collapse: collapse; vertical-align: top; }
#topk td, #topk th { border-bottom: 1px solid #ddd; padding: 0.2em 0.8em; text-align: left; }
#timeline { width: 100%; border: 1px solid #ccc; }
#legend span { display: inline-block; margin-right: 1em; }
#legend i { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: middle; }
"""

SCRIPT_JS = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];
let timeline = null;

function headers() {
  const t = $("token").value;
  return t ? {"Authorization": "Bearer " + t} : {};
}
function status(text, value) {
  $("status").textContent = text;
  const bar = $("progress");
  bar.hidden = value === null;
  if (value !== null) bar.value = value;
}
function fail(text) {
  $("error").hidden = false;
  $("error").textContent = text;
  status("", null);
}

async function loadModels() {
  const r = await fetch("/models", {headers: headers()});
  if (!r.ok) { fail("models: " + (await r.json()).error); return; }
  const doc = await r.json();
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of doc.models) {
    const o = document.createElement("option");
    o.value = o.textContent = m.name;
    sel.appendChild(o);
  }
  $("window").value = $("window").value || doc.defaults.window;
  $("stride").value = $("stride").value || doc.defaults.stride;
}

function upload(file) {
  $("error").hidden = true;
  $("result").hidden = true;
  const form = new FormData();
  form.append("file", file);
  form.append("model", $("model").value);
  form.append("window", $("window").value);
  form.append("stride", $("stride").value);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/jobs");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) status("uploading", e.loaded / e.total); };
  xhr.onerror = () => fail("upload failed (network)");
  xhr.onload = () => {
    let doc = {};
    try { doc = JSON.parse(xhr.responseText); } catch (e) { doc = {error: xhr.statusText}; }
    if (xhr.status !== 202) { fail(xhr.status + ": " + doc.error); return; }
    status("queued", 0);
    poll(doc.url, file);
  };
  status("uploading", 0);
  xhr.send(form);
}

async function poll(url, file) {
  const r = await fetch(url, {headers: headers()});
  const job = await r.json();
  if (!r.ok) { fail(r.status + ": " + job.error); return; }
  if (job.state === "error") { fail(job.status + ": " + job.error); return; }
  if (job.state !== "done") {
    status(job.stage + " " + Math.round(100 * job.progress) + "%", job.progress);
    setTimeout(() => poll(url, file), 250);
    return;
  }
  status("done", null);
  show(job.result, file);
}

function show(result, file) {
  timeline = result.timeline;
  const body = $("topk").querySelector("tbody");
  body.innerHTML = "";
  result.top.forEach((t, i) => {
    const row = body.insertRow();
    row.insertCell().textContent = i + 1;
    row.insertCell().textContent = t.class;
    row.insertCell().textContent = t.probability.toFixed(3);
  });
  const video = $("video");
  if (video.src) URL.revokeObjectURL(video.src);
  video.src = URL.createObjectURL(file);
  $("result").hidden = false;
  drawTimeline();
  current();
}

function colour(index) { return COLOURS[index % COLOURS.length]; }

function drawTimeline() {
  const canvas = $("timeline"), ctx = canvas.getContext("2d");
  const wins = timeline.windows;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!wins.length) return;
  const end = wins[wins.length - 1].end, h = canvas.height - 20;
  const x = (t) => t / end * canvas.width;
  const used = new Map();
  wins.forEach((w, i) => {
    const next = i + 1 < wins.length ? wins[i + 1].start : w.end;
    const top = w.smoothed_top;
    used.set(top.index, top.class);
    ctx.fillStyle = colour(top.index);
    ctx.globalAlpha = 0.35 + 0.65 * top.probability;
    ctx.fillRect(x(w.start), 0, Math.max(1, x(next) - x(w.start)), h);
  });
  ctx.globalAlpha = 1;
  ctx.fillStyle = "#222";
  ctx.font = "11px sans-serif";
  for (let s = 0; s <= end; s += Math.max(1, Math.ceil(end / 10))) ctx.fillText(s + " s", x(s) + 2, h + 14);
  const legend = $("legend");
  legend.innerHTML = "";
  for (const [index, name] of used) {
    const span = document.createElement("span");
    const box = document.createElement("i");
    box.style.background = colour(index);
    span.appendChild(box);
    span.appendChild(document.createTextNode(name));
    legend.appendChild(span);
  }
}

function current() {
  if (!timeline || !timeline.windows.length) return;
  const t = $("video").currentTime;
  let w = timeline.windows[0];
  for (const win of timeline.windows) if (win.start <= t) w = win;
  $("current").textContent = w.start.toFixed(1) + "-" + w.end.toFixed(1) + " s: " + w.top[0].class +
    " (" + w.top[0].probability.toFixed(2) + ")";
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
$("video").addEventListener("timeupdate", current);
$("token").addEventListener("change", loadModels);
loadModels();
"""
