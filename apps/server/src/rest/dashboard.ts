import type { RestRoute } from './index.ts';

/**
 * A dependency-free dashboard at `/`: jobs with per-stage progress, refreshed every 2 s,
 * and a job's tasks and timeline on click. It reads the same tRPC API as the CLI.
 */
export function dashboardRoute(): RestRoute {
  return async (req, res, url) => {
    if (req.method !== 'GET' || (url.pathname !== '/' && url.pathname !== '/dashboard')) return false;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    return true;
  };
}

const PAGE = /* html */ `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CoreMachine</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:baseline}
 header h1{font-size:18px;margin:0} header span{opacity:.7}
 main{display:grid;grid-template-columns:minmax(420px,1fr) 1fr;gap:16px;padding:16px}
 section{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:12px;overflow:auto;max-height:calc(100vh - 110px)}
 table{border-collapse:collapse;width:100%} td,th{padding:6px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
 tr.job{cursor:pointer} tr.job:hover{background:#f0f4ff}
 .st{padding:2px 6px;border-radius:4px;font-size:12px;color:#fff}
 .completed{background:#2e7d32}.completed_with_errors{background:#ef6c00}.failed{background:#c62828}.processing{background:#1565c0}.queued{background:#757575}.cancelled{background:#6d4c41}.pending{background:#bbb}
 .stage{white-space:nowrap}
 .bar{height:8px;background:#eee;border-radius:4px;overflow:hidden;width:160px;display:inline-block;vertical-align:middle}
 .bar i{display:block;height:100%;background:#1565c0}.bar i.f{background:#c62828;float:left}
 pre{background:#f3f3f3;padding:8px;border-radius:4px;white-space:pre-wrap;font-size:12px}
 select,input{font:inherit}
</style></head><body>
<header><h1>CoreMachine</h1><span id="health">…</span></header>
<main><section><div>Status <select id="status"><option value="">all</option><option>queued</option><option>processing</option><option>completed</option><option>completed_with_errors</option><option>failed</option><option>cancelled</option></select></div>
<table><thead><tr><th>Job</th><th>Type</th><th>Status</th><th>Stages</th><th>Created</th></tr></thead><tbody id="jobs"></tbody></table></section>
<section id="detail"><p>Select a job.</p></section></main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function q(path, input) {
  const r = await fetch('/trpc/' + path + (input ? '?input=' + encodeURIComponent(JSON.stringify(input)) : ''));
  const body = await r.json();
  if (body.error) throw new Error(body.error.message);
  return body.result.data;
}
const bar = (s) => { const t = Math.max(s.total, 1); return '<span class="bar"><i class="f" style="width:' + (100 * s.failed / t) + '%"></i><i style="width:' + (100 * s.completed / t) + '%"></i></span> ' + s.completed + '/' + s.total + (s.failed ? ' (' + s.failed + ' failed)' : ''); };
let selected = null;
async function refresh() {
  try {
    const h = await q('health');
    $('health').textContent = h.status + ' · v' + h.version + ' · plugins: ' + h.plugins.loaded.join(', ');
    const status = $('status').value || undefined;
    const page = await q('jobs.list', { limit: 50, ...(status ? { status } : {}) });
    $('jobs').innerHTML = page.items.map((j) => '<tr class="job" data-id="' + j.id + '"><td><code>' + j.id.slice(0, 12) + '</code></td><td>' + esc(j.type) + '</td><td><span class="st ' + j.status + '">' + j.status + '</span></td><td>' +
      j.stages.map((s) => '<span class="stage">' + esc(s.name) + ' ' + bar(s) + '</span>').join('<br>') + '</td><td>' + new Date(j.createdAt).toLocaleString() + '</td></tr>').join('');
    for (const tr of document.querySelectorAll('tr.job')) tr.onclick = () => { selected = tr.dataset.id; detail(); };
    if (selected) await detail();
  } catch (e) { $('health').textContent = 'error: ' + e.message; }
}
async function detail() {
  const j = await q('jobs.get', { jobId: selected });
  const tasks = await q('jobs.tasks', { jobId: selected, limit: 50 });
  const events = await q('jobs.events', { jobId: selected });
  $('detail').innerHTML = '<h3>' + esc(j.type) + ' <span class="st ' + j.status + '">' + j.status + '</span></h3><code>' + j.id + '</code>' +
    '<h4>Parameters</h4><pre>' + esc(JSON.stringify(j.parameters, null, 2)) + '</pre>' +
    (j.error ? '<h4>Error</h4><pre>' + esc(JSON.stringify(j.error, null, 2)) + '</pre>' : '') +
    (j.result ? '<h4>Result</h4><pre>' + esc(JSON.stringify(j.result, null, 2)) + '</pre>' : '') +
    '<h4>Tasks (first 50)</h4><table>' + tasks.items.map((t) => '<tr><td>' + esc(t.stageName) + '</td><td>' + esc(t.key) + '</td><td><span class="st ' + t.status + '">' + t.status + '</span></td><td>' + t.attempts + '/' + t.maxAttempts + '</td><td>' + esc(t.error ? t.error.code + ': ' + t.error.message : '') + '</td></tr>').join('') + '</table>' +
    '<h4>Timeline</h4><table>' + events.map((e) => '<tr><td>' + new Date(e.at).toLocaleTimeString() + '</td><td>' + esc(e.kind) + '</td><td>' + esc(e.message) + '</td></tr>').join('') + '</table>';
}
$('status').onchange = refresh;
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
