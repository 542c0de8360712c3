"""The web page served at ``/``: one static HTML file with inline CSS and JavaScript, no build step
and nothing fetched from elsewhere (it works offline). It calls the JSON API of the same server.
Kept as a Python string so it ships inside the wheel without package-data configuration."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>codeseer</title>
<style>
  :root { --bg:#fafafa; --fg:#1d2330; --muted:#6b7280; --card:#fff; --line:#e5e7eb; --accent:#2563eb;
          --kw:#7c3aed; --str:#047857; --com:#9ca3af; --num:#b45309; }
  * { box-sizing: border-box; }
  body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg); }
  header { padding:.8rem 1.2rem; background:#111827; color:#f9fafb; display:flex; gap:1rem; align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:1.2rem; margin:0; }
  header #status { color:#d1d5db; font-size:.85rem; }
  main { max-width:75rem; margin:0 auto; padding:1rem 1.2rem; }
  form { display:flex; gap:.5rem; flex-wrap:wrap; align-items:center; margin-bottom:.6rem; }
  input, select, button { font:inherit; padding:.45rem .6rem; border:1px solid #cbd5e1; border-radius:.35rem; background:#fff; }
  #q { flex:1 1 28rem; min-width:14rem; }
  #path { width:11rem; } #k { width:4.5rem; }
  button { cursor:pointer; background:var(--accent); color:#fff; border-color:var(--accent); }
  button.secondary { background:#fff; color:var(--accent); }
  #token-row { display:none; gap:.5rem; align-items:center; margin-bottom:.6rem; }
  #message { color:#b91c1c; min-height:1.2rem; margin:.3rem 0; white-space:pre-wrap; }
  #results-title { font-size:1rem; margin:.6rem 0; color:var(--muted); font-weight:600; }
  .result { background:var(--card); border:1px solid var(--line); border-radius:.5rem; margin-bottom:.8rem; overflow:hidden; }
  .result .head { display:flex; gap:.7rem; align-items:center; padding:.45rem .7rem; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  .loc { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight:600; color:var(--accent); }
  .sym { font-family: ui-monospace, monospace; }
  .meta { color:var(--muted); font-size:.85rem; }
  .head button { margin-left:auto; padding:.2rem .6rem; font-size:.85rem; }
  pre { margin:0; padding:.5rem 0; overflow-x:auto; font: .82rem/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
  .ln { display:inline-block; width:3.5rem; padding-right:.8rem; text-align:right; color:#9ca3af; user-select:none; }
  .kw { color:var(--kw); font-weight:600; } .str { color:var(--str); } .com { color:var(--com); font-style:italic; } .num { color:var(--num); }
</style>
</head>
<body>
<header><h1>codeseer</h1><span id="status">connecting…</span></header>
<main>
  <div id="token-row"><label for="token">Bearer token</label><input id="token" type="password" autocomplete="off">
    <button id="token-save" type="button">Use token</button></div>
  <form id="search-form">
    <input id="q" name="q" placeholder="Describe what you are looking for, or paste code" autofocus>
    <select id="mode" title="Search mode"><option value="hybrid">hybrid</option><option value="dense">dense</option><option value="lexical">lexical</option></select>
    <select id="lang" title="Language"><option value="">any language</option></select>
    <input id="path" placeholder="path glob, e.g. src/**" title="Only paths matching this glob">
    <input id="k" type="number" min="1" max="100" value="10" title="Number of results">
    <button id="search-btn" type="submit">Search</button>
  </form>
  <div id="message" role="alert"></div>
  <div id="results-title"></div>
  <div id="results"></div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("codeseer-token") || "";

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await response.json(); } catch (e) { data = {detail: response.statusText}; }
  if (response.status === 401) { $("token-row").style.display = "flex"; }
  if (!response.ok) { throw new Error((data && data.detail) || ("HTTP " + response.status)); }
  return data;
}

const KEYWORDS = new Set(("abstract and as async await break case catch class const continue def default defer del do elif else " +
  "enum except export extends false final finally fn for foreach from func function go if impl implements import in " +
  "instanceof interface is lambda let match mod module mut namespace new nil none not null of or package pass private " +
  "protected pub public raise return self static struct super switch this throw throws trait true try type typeof " +
  "use using val var void while with yield None True False").split(" "));
const TOKEN = /(\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|"{3}[\s\S]*?"{3}|'{3}[\s\S]*?'{3}|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`|\b\d+(?:\.\d+)?\b|\b[A-Za-z_][A-Za-z0-9_]*\b)/g;

function escapeHtml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function highlight(code, language) {
  const hashComments = ["python", "ruby", "bash", "shell", "yaml", "toml", "perl", "r"].includes(language);
  let out = "", last = 0, m;
  TOKEN.lastIndex = 0;
  while ((m = TOKEN.exec(code)) !== null) {
    const t = m[0];
    out += escapeHtml(code.slice(last, m.index));
    let cls = null;
    if (t.startsWith("//") || t.startsWith("/*")) cls = "com";
    else if (t.startsWith("#")) cls = hashComments ? "com" : null;
    else if (/^["'`]/.test(t)) cls = "str";
    else if (/^\d/.test(t)) cls = "num";
    else if (KEYWORDS.has(t)) cls = "kw";
    out += cls ? '<span class="' + cls + '">' + escapeHtml(t) + "</span>" : escapeHtml(t);
    last = m.index + t.length;
  }
  return out + escapeHtml(code.slice(last));
}

function codeBlock(text, start, language) {
  const html = highlight(text, language).split("\n");
  return html.map((line, i) => '<span class="ln">' + (start + i) + "</span>" + line).join("\n");
}

function render(title, hits) {
  $("results-title").textContent = title;
  const box = $("results");
  box.innerHTML = "";
  if (!hits.length) { box.innerHTML = '<p class="meta">No results.</p>'; return; }
  for (const hit of hits) {
    const card = document.createElement("div");
    card.className = "result";
    const head = document.createElement("div");
    head.className = "head";
    const loc = document.createElement("span");
    loc.className = "loc";
    loc.textContent = hit.path + ":" + hit.start_line + "-" + hit.end_line;
    const sym = document.createElement("span");
    sym.className = "sym";
    sym.textContent = hit.symbol || hit.kind;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = hit.language + " · " + hit.score.toFixed(3);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary similar-btn";
    button.textContent = "similar";
    button.addEventListener("click", () => findSimilar(hit));
    head.append(loc, sym, meta, button);
    const pre = document.createElement("pre");
    pre.innerHTML = codeBlock(hit.text, hit.start_line, hit.language);
    card.append(head, pre);
    box.append(card);
  }
}

function showError(e) {
  $("results-title").textContent = "";
  $("results").innerHTML = "";
  $("message").textContent = e.message;
}

function filters() {
  const lang = $("lang").value;
  const path = $("path").value.trim();
  const k = Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));
  return {languages: lang ? [lang] : null, path: path || null, k};
}

async function search(event) {
  if (event) event.preventDefault();
  const query = $("q").value.trim();
  $("message").textContent = "";
  if (!query) { $("message").textContent = "Type a query first."; return; }
  const f = filters();
  $("results-title").textContent = "Searching…";
  try {
    const data = await api("POST", "/search", {query, k: f.k, mode: $("mode").value, languages: f.languages, path: f.path});
    render('Results for "' + query + '"', data.hits);
  } catch (e) { showError(e); }
}

async function findSimilar(hit) {
  const f = filters();
  $("message").textContent = "";
  $("results-title").textContent = "Finding similar code…";
  try {
    const data = await api("POST", "/similar", {file: hit.repo ? hit.repo + "/" + hit.path : hit.path, line: hit.start_line, k: f.k, languages: f.languages, path: f.path});
    render("Similar to " + hit.path + ":" + hit.start_line + (hit.symbol ? " (" + hit.symbol + ")" : ""), data.hits);
    window.scrollTo(0, 0);
  } catch (e) { showError(e); }
}

async function loadStatus() {
  try {
    const s = await api("GET", "/status");
    $("status").textContent = s.root + " · " + s.files + " files · " + s.chunks + " chunks · " + s.model;
    const select = $("lang");
    for (const [name, files] of Object.entries(s.languages)) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name + " (" + files + ")";
      select.append(option);
    }
    $("token-row").style.display = "none";
  } catch (e) { $("status").textContent = "not connected"; $("message").textContent = e.message; }
}

$("search-form").addEventListener("submit", search);
$("token-save").addEventListener("click", () => {
  token = $("token").value.trim();
  localStorage.setItem("codeseer-token", token);
  $("message").textContent = "";
  loadStatus();
});
loadStatus();
</script>
</body>
</html>
"""
