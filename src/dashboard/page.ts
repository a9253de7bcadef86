/**
 * The dashboard page: HTML, CSS and plain browser JavaScript, kept as strings so the built package needs
 * no asset copying. No inline script or style, no eval: the page works under a strict CSP.
 * The script must not use backticks or `${`: it lives in a template literal.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cdf-gateway dashboard</title>
<link rel="icon" href="/dashboard/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/uplot.css">
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/uplot.js" defer></script>
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header class="top">
  <div>
    <h1>cdf-gateway <span class="light">live dashboard</span></h1>
    <p class="sub">What this gateway instance does with the calls apps send to Cognite Data Fusion (CDF):
      how much of each quota bucket is used, who waits, what CDF throttles, and who sends what.
      Last 10 minutes, one point per second, refreshed every 2 s. Hover a chart to read exact values.</p>
  </div>
  <div class="conn" id="conn" data-state="connecting">connecting&hellip;</div>
</header>
<main>
  <section class="tiles" id="tiles"></section>

  <section class="block">
    <h2>Quota use per bucket</h2>
    <p class="explain">A bucket is one entry of <code>limits:</code> in the gateway's configuration (summed over
      projects or identities). <b>Admitted</b>: calls per second let through to CDF, retries included.
      <b>Effective limit</b>: what the gateway allows now; it drops below the <b>configured limit</b> when CDF answers
      429 (adaptive limits) and climbs back while calls succeed.</p>
    <div class="grid3" id="buckets"></div>
    <p class="empty" id="buckets-empty">No calls yet: a bucket appears here with its first call.</p>
    <table class="table" id="bucket-table">
      <thead><tr>
        <th>Bucket</th><th>Scopes</th><th>Admitted, calls/s<br><small>last 10 s</small></th>
        <th>Effective / configured rate<br><small>calls/s</small></th><th>In flight / concurrency</th>
        <th>Waiting now</th><th>Avg. wait<br><small>last 10 s</small></th><th>Refused by queue<br><small>last 10 min</small></th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section class="grid2">
    <article class="card">
      <h3>Requests waiting in the queue <span class="unit">requests</span></h3>
      <p class="explain">Requests held by the gateway until their bucket has a token and a free slot, per bucket.
        A queue that keeps growing means apps ask for more than the limit allows.</p>
      <div class="chart" data-chart="queue"></div>
    </article>
    <article class="card">
      <h3>Time spent waiting in the queue <span class="unit">milliseconds</span></h3>
      <p class="explain">Average wait of the calls admitted in each second, per bucket. 0 means calls went straight
        through. Calls that wait longer than <code>queue.maxWaitMs</code> get a 429 from the gateway.</p>
      <div class="chart" data-chart="wait"></div>
    </article>
    <article class="card">
      <h3>429 Too Many Requests <span class="unit">per second</span></h3>
      <p class="explain"><b>From CDF</b>: throttling answers CDF sent. The gateway either <b>retried</b> them (the app never
        saw the 429) or <b>passed them on</b> to the app. <b>From the gateway's queue</b>: requests refused before
        reaching CDF because the queue was full or the wait too long.</p>
      <div class="chart" data-chart="throttling"></div>
    </article>
    <article class="card">
      <h3>Responses by status code <span class="unit">responses per second</span></h3>
      <p class="explain">Answers the apps received, by HTTP status. 2xx are successes; 429 is throttling;
        499 means the app went away before the answer; 5xx are failures of CDF or the gateway.</p>
      <div class="chart" data-chart="status"></div>
    </article>
    <article class="card">
      <h3>Requests per client <span class="unit">requests per second</span></h3>
      <p class="explain">Apps are told apart by the <code>x-cdf-gateway-client</code> or <code>x-cdp-app</code> header
        (else by token). The bar shows each client's share of the requests of the last minute.</p>
      <div class="sharebar" id="sharebar"></div>
      <div class="chart" data-chart="clients"></div>
    </article>
    <article class="card">
      <h3>Cache hit ratio <span class="unit">percent</span></h3>
      <p class="explain">Share of cacheable requests answered without a call to CDF (hits, stale answers and
        requests joined to an identical call in flight), over a sliding 10 s window. Caching is opt-in
        (<code>cache.rules</code>).</p>
      <p class="empty" id="cache-empty">No cacheable requests yet.</p>
      <div class="chart" data-chart="cache"></div>
    </article>
  </section>
</main>
<footer>Prometheus series: <a href="/metrics">/metrics</a> &middot; the data behind this page:
  <a href="/dashboard/data.json">/dashboard/data.json</a></footer>
</body>
</html>
`;

export const DASHBOARD_FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
<rect width="16" height="16" rx="3" fill="#1d4ed8"/><path d="M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z" fill="#fff"/></svg>
`;

export const DASHBOARD_CSS = `
:root {
  --bg: #f1f5f9; --card: #ffffff; --ink: #0f172a; --muted: #475569; --faint: #94a3b8; --line: #e2e8f0;
  --ok: #15803d; --warn: #b45309; --bad: #b91c1c; --accent: #1d4ed8;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #e2e8f0; padding: 0 4px; border-radius: 3px; }
a { color: var(--accent); }
.top { display: flex; justify-content: space-between; align-items: flex-start; gap: 24px;
  padding: 20px 28px 16px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; font-weight: 650; }
h1 .light { font-weight: 400; color: var(--muted); }
.sub { margin: 0; color: var(--muted); max-width: 980px; }
.conn { white-space: nowrap; padding: 4px 10px; border-radius: 999px; font-size: 12px; font-weight: 600;
  background: #e2e8f0; color: var(--muted); }
.conn[data-state="live"] { background: #dcfce7; color: var(--ok); }
.conn[data-state="error"] { background: #fee2e2; color: var(--bad); }
main { padding: 18px 28px 8px; max-width: 1480px; margin: 0 auto; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-bottom: 18px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.tile .value { font-size: 24px; font-weight: 650; margin: 2px 0; }
.tile .note { color: var(--muted); font-size: 12px; }
.tile[data-tone="ok"] .value { color: var(--ok); }
.tile[data-tone="warn"] .value { color: var(--warn); }
.tile[data-tone="bad"] .value { color: var(--bad); }
.block, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.block { margin-bottom: 18px; }
h2 { margin: 0 0 4px; font-size: 17px; }
h3 { margin: 0 0 4px; font-size: 15px; }
h3 .unit, h4 .unit { font-weight: 400; color: var(--muted); font-size: 12px; margin-left: 6px; }
.explain { margin: 0 0 10px; color: var(--muted); font-size: 13px; max-width: 1100px; }
.grid2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px; margin-bottom: 18px; }
.grid3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; }
.bucket { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px 4px; }
.bucket h4 { margin: 0; font-size: 14px; }
.bucket .meta { color: var(--muted); font-size: 12px; margin-bottom: 4px; }
.chart { min-height: 40px; }
.empty { color: var(--faint); font-style: italic; margin: 6px 0; }
.empty[hidden] { display: none; }
.table { width: 100%; border-collapse: collapse; margin-top: 14px; font-size: 13px; }
.table th { text-align: right; font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: bottom; }
.table th small { font-weight: 400; color: var(--faint); }
.table td { text-align: right; padding: 5px 8px; border-bottom: 1px solid #f1f5f9; font-variant-numeric: tabular-nums; }
.table th:first-child, .table td:first-child { text-align: left; }
.table td.hot { color: var(--bad); font-weight: 600; }
.sharebar { display: flex; height: 14px; border-radius: 4px; overflow: hidden; background: var(--line); margin: 0 0 4px; }
.sharebar span { display: block; height: 100%; }
.sharelegend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-bottom: 6px; }
.sharelegend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
footer { color: var(--muted); font-size: 12px; padding: 4px 28px 24px; max-width: 1480px; margin: 0 auto; }
.uplot { font-family: inherit; }
.u-legend { font-size: 12px; text-align: left; margin-top: 2px; }
.u-legend .u-marker { width: 12px; height: 3px; margin-right: 5px; }
.u-legend th { font-weight: 500; color: var(--ink); }
.u-legend td { color: var(--muted); font-variant-numeric: tabular-nums; }
.u-legend .u-series { padding: 0 6px; }
.u-legend .u-series:first-child th { color: var(--muted); font-weight: 400; }
`;

export const DASHBOARD_JS = `(function () {
  'use strict';

  var REFRESH_MS = 2000;
  var MAX_CLIENT_LINES = 8;
  var DATA_URL = '/dashboard/data.json';
  var PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#0891b2', '#db2777', '#ca8a04', '#4b5563', '#65a30d', '#7c3aed'];
  var GRID = { stroke: '#e2e8f0', width: 1 };
  var TICKS = { stroke: '#cbd5e1', width: 1, size: 4 };
  var plots = {};
  var colorOf = {};
  var nextColor = 0;
  var resizeTimer = null;

  function color(key) {
    if (!colorOf[key]) colorOf[key] = PALETTE[nextColor++ % PALETTE.length];
    return colorOf[key];
  }

  function statusColor(code) {
    var c = Number(code);
    if (c === 429) return '#dc2626';
    if (c === 499) return '#94a3b8';
    if (c >= 500) return c === 503 ? '#7e22ce' : '#a855f7';
    if (c >= 400) return ['#f59e0b', '#d97706', '#b45309', '#92400e'][c % 4];
    if (c >= 300) return '#0891b2';
    return ['#16a34a', '#15803d', '#4d7c0f', '#22c55e'][c % 4];
  }

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) return '-';
    var a = Math.abs(v);
    var s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
    if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/[.]$/, '');
    return s;
  }

  function clock(sec) {
    var d = new Date(sec * 1000);
    var two = function (n) { return n < 10 ? '0' + n : String(n); };
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function lastN(arr, n) {
    var out = [];
    for (var i = Math.max(0, arr.length - n); i < arr.length; i++) if (arr[i] !== null) out.push(arr[i]);
    return out;
  }
  function mean(arr) {
    if (arr.length === 0) return null;
    var s = 0;
    for (var i = 0; i < arr.length; i++) s += arr[i];
    return s / arr.length;
  }
  function sum(arr) {
    var s = 0;
    for (var i = 0; i < arr.length; i++) s += arr[i] || 0;
    return s;
  }
  function last(arr) {
    for (var i = arr.length - 1; i >= 0; i--) if (arr[i] !== null) return arr[i];
    return null;
  }

  // One uPlot per key; rebuilt only when its series change, else fed new data.
  function draw(key, host, spec, t) {
    var sig = spec.series.map(function (s) { return s.label + '/' + s.color; }).join('|');
    var data = [t].concat(spec.series.map(function (s) { return s.data; }));
    var points = 0;
    spec.series.forEach(function (s) { s.data.forEach(function (v) { if (v !== null) points++; }); });
    host.setAttribute('data-points', String(points));
    var entry = plots[key];
    if (entry && entry.sig === sig && entry.host === host) {
      entry.plot.setData(data);
      return;
    }
    if (entry) entry.plot.destroy();
    var unit = spec.unit;
    var opts = {
      width: Math.max(280, host.clientWidth),
      height: spec.height || 210,
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: { time: true, range: function (u, min, max) {
          if (min === null || max === null) { var now = Date.now() / 1000; return [now - 60, now]; }
          return [Math.min(min, max - 30), max];
        } },
        y: { range: function (u, min, max) {
          var top = spec.max !== undefined ? spec.max : Math.max(spec.minTop || 1, (max || 0) * 1.15);
          return [0, top];
        } }
      },
      axes: [
        { stroke: '#64748b', grid: GRID, ticks: TICKS, font: '11px system-ui, sans-serif', space: 64,
          values: function (u, splits) { return splits.map(clock); } },
        { stroke: '#64748b', grid: GRID, ticks: TICKS, size: 52, font: '11px system-ui, sans-serif',
          values: function (u, splits) { return splits.map(function (v) { return fmt(v) + (spec.axisSuffix || ''); }); } }
      ],
      // Without a cursor the legend shows the latest values; hovering shows the values at that second.
      series: [{ label: 'time', value: function (u, v, si, idx) {
        return idx === null || idx === undefined || v === null ? 'latest' : clock(v);
      } }]
        .concat(spec.series.map(function (s) {
          return {
            label: s.label,
            stroke: s.color,
            width: s.width || 2,
            dash: s.dash,
            fill: s.fill,
            points: { show: false },
            value: function (u, v, si, idx) {
              if (idx === null || idx === undefined) v = last(u.data[si]);
              return v === null || v === undefined ? '-' : fmt(v) + ' ' + unit;
            }
          };
        }))
    };
    plots[key] = { plot: new uPlot(opts, data, host), sig: sig, host: host };
  }

  function tile(label, value, note, tone) {
    var t = el('div', 'tile');
    if (tone) t.setAttribute('data-tone', tone);
    t.appendChild(el('div', 'label', label));
    t.appendChild(el('div', 'value', value));
    t.appendChild(el('div', 'note', note));
    return t;
  }

  function renderTiles(d) {
    var host = document.getElementById('tiles');
    var c = d.current;
    var tot = c.totals;
    var rps = mean(lastN(d.requests.total, 10));
    var ratio = tot.cacheable > 0 ? Math.round((100 * tot.cacheSpared) / tot.cacheable) + ' %' : 'n/a';
    var circuitTone = c.circuit === 'closed' ? 'ok' : c.circuit === 'open' ? 'bad' : 'warn';
    var circuitNote = c.circuit === 'closed' ? 'calls flow to CDF' : c.circuit === 'open' ? 'failing fast: CDF keeps failing' : 'one probe call let through';
    var tiles = [
      tile('Requests / s', fmt(rps === null ? 0 : rps), 'average of the last 10 s; ' + tot.requests + ' since start'),
      tile('429 from CDF', String(tot.upstream429), tot.retried + ' retried, ' + tot.passedOn + ' passed on (since start)', tot.passedOn > 0 ? 'warn' : undefined),
      tile('429 from the queue', String(tot.gateway429), "the gateway's own: queue full or wait too long (since start)", tot.gateway429 > 0 ? 'warn' : undefined),
      tile('Cache hit ratio', ratio, tot.cacheable + ' cacheable requests' + (c.cache ? ', ' + c.cache.entries + ' entries held' : '')),
      tile('Circuit breaker', c.circuit, circuitNote, circuitTone),
      tile('Quota store', c.store.mode, c.store.healthy ? 'healthy' : 'unreachable: local fallback', c.store.healthy ? 'ok' : 'bad')
    ];
    host.replaceChildren.apply(host, tiles);
  }

  function renderBuckets(d) {
    var names = Object.keys(d.buckets).sort();
    var grid = document.getElementById('buckets');
    document.getElementById('buckets-empty').hidden = names.length > 0;
    var keep = {};
    names.forEach(function (name) {
      var b = d.buckets[name];
      var id = 'bucket-' + name;
      keep[id] = true;
      var card = grid.querySelector('[data-bucket="' + CSS.escape(name) + '"]');
      if (!card) {
        card = el('div', 'bucket');
        card.setAttribute('data-bucket', name);
        var h = el('h4', null, name);
        h.appendChild(el('span', 'unit', 'calls per second'));
        card.appendChild(h);
        card.appendChild(el('div', 'meta'));
        var chart = el('div', 'chart');
        chart.setAttribute('data-chart', id);
        card.appendChild(chart);
        grid.appendChild(card);
      }
      var eff = last(b.effectiveRate);
      var conf = last(b.configuredRate);
      var use = mean(lastN(b.admitted, 10));
      var pct = eff ? Math.round((100 * (use || 0)) / eff) : 0;
      card.querySelector('.meta').textContent = 'using ' + pct + ' % of the effective limit (' + fmt(eff) + ' of ' + fmt(conf) + ' calls/s configured)';
      draw(id, card.querySelector('.chart'), {
        unit: 'calls/s',
        height: 170,
        series: [
          { label: 'admitted', data: b.admitted, color: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)' },
          { label: 'effective limit', data: b.effectiveRate, color: '#ea580c' },
          { label: 'configured limit', data: b.configuredRate, color: '#94a3b8', dash: [6, 4], width: 1.5 }
        ]
      }, d.t);
    });
    Array.prototype.slice.call(grid.children).forEach(function (card) {
      var id = 'bucket-' + card.getAttribute('data-bucket');
      if (!keep[id]) {
        if (plots[id]) { plots[id].plot.destroy(); delete plots[id]; }
        card.remove();
      }
    });

    var tbody = document.querySelector('#bucket-table tbody');
    document.getElementById('bucket-table').hidden = names.length === 0;
    tbody.replaceChildren.apply(tbody, names.map(function (name) {
      var b = d.buckets[name];
      var tr = el('tr');
      var refused = sum(b.rejected.map(function (v) { return v === null ? 0 : v; }));
      var waits = lastN(b.waitAvgMs, 10);
      var cells = [
        name,
        fmt(last(b.scopes)),
        fmt(mean(lastN(b.admitted, 10)) || 0),
        fmt(last(b.effectiveRate)) + ' / ' + fmt(last(b.configuredRate)),
        fmt(last(b.inFlight)) + ' / ' + fmt(last(b.effectiveConcurrency)),
        fmt(last(b.queued)),
        waits.length ? fmt(mean(waits)) + ' ms' : '-',
        fmt(Math.round(refused))
      ];
      cells.forEach(function (text, i) {
        var td = el('td', null, text);
        if ((i === 7 && refused >= 0.5) || (i === 5 && last(b.queued) > 0)) td.className = 'hot';
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  function perBucket(d, field) {
    return Object.keys(d.buckets).sort().map(function (name) {
      return { label: name, data: d.buckets[name][field], color: color('b:' + name) };
    });
  }

  function renderShares(d) {
    var host = document.getElementById('sharebar');
    var entries = Object.keys(d.requests.byClient)
      .map(function (n) { return { name: n, total: sum(lastN(d.requests.byClient[n], 60)), color: color('c:' + n) }; })
      .filter(function (e) { return e.total > 0; })
      .sort(function (a, b) { return b.total - a.total; });
    var all = sum(entries.map(function (e) { return e.total; }));
    if (entries.length > MAX_CLIENT_LINES) {
      var rest = entries.slice(MAX_CLIENT_LINES);
      entries = entries.slice(0, MAX_CLIENT_LINES);
      entries.push({ name: rest.length + ' more clients', total: sum(rest.map(function (e) { return e.total; })), color: '#94a3b8' });
    }
    var segments = [];
    var legend = el('div', 'sharelegend');
    entries.forEach(function (e) {
      var pct = (100 * e.total) / all;
      var s = el('span');
      s.style.width = pct + '%';
      s.style.background = e.color;
      s.title = e.name + ': ' + pct.toFixed(1) + ' %';
      segments.push(s);
      var item = el('span');
      var swatch = el('i');
      swatch.style.background = e.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(e.name + ' ' + pct.toFixed(0) + ' %'));
      legend.appendChild(item);
    });
    host.replaceChildren.apply(host, segments);
    var old = host.nextElementSibling;
    if (old && old.classList.contains('sharelegend')) old.remove();
    host.after(legend);
  }

  // The busiest clients get a line each (byClient comes busiest first); the rest share one.
  function clientSeries(d) {
    var names = Object.keys(d.requests.byClient);
    var series = names.slice(0, MAX_CLIENT_LINES).map(function (n) {
      return { label: n, data: d.requests.byClient[n], color: color('c:' + n) };
    });
    var rest = names.slice(MAX_CLIENT_LINES);
    if (rest.length > 0) {
      var data = d.t.map(function (_, i) {
        var total = 0;
        rest.forEach(function (n) { total += d.requests.byClient[n][i] || 0; });
        return Math.round(total * 1000) / 1000;
      });
      series.push({ label: rest.length + ' more clients', data: data, color: '#94a3b8', dash: [4, 3] });
    }
    return series;
  }

  function chartHost(name) {
    return document.querySelector('[data-chart="' + name + '"]');
  }

  function render(d) {
    renderTiles(d);
    renderBuckets(d);
    draw('queue', chartHost('queue'), { unit: 'waiting', series: perBucket(d, 'queued') }, d.t);
    draw('wait', chartHost('wait'), { unit: 'ms', axisSuffix: ' ms', series: perBucket(d, 'waitAvgMs') }, d.t);
    var th = d.throttling;
    draw('throttling', chartHost('throttling'), {
      unit: '/s',
      series: [
        { label: '429 from CDF', data: th.upstream429, color: '#dc2626', fill: 'rgba(220, 38, 38, 0.08)' },
        { label: 'retried by the gateway', data: th.retried, color: '#16a34a' },
        { label: 'passed on to the app', data: th.passedOn, color: '#ea580c', dash: [5, 3] },
        { label: "429 from the gateway's queue", data: th.gateway429, color: '#7c3aed' }
      ]
    }, d.t);
    draw('status', chartHost('status'), {
      unit: '/s',
      series: Object.keys(d.requests.byStatus).map(function (code) {
        return { label: code, data: d.requests.byStatus[code], color: statusColor(code) };
      })
    }, d.t);
    renderShares(d);
    draw('clients', chartHost('clients'), { unit: '/s', series: clientSeries(d) }, d.t);
    var anyCache = d.current.totals.cacheable > 0;
    document.getElementById('cache-empty').hidden = anyCache;
    draw('cache', chartHost('cache'), {
      unit: '%',
      axisSuffix: ' %',
      max: 100,
      series: [
        { label: 'hit ratio', data: d.cache.hitRatio.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }),
          color: '#0891b2', fill: 'rgba(8, 145, 178, 0.1)' }
      ]
    }, d.t);
  }

  function setConn(state, text) {
    var c = document.getElementById('conn');
    c.setAttribute('data-state', state);
    c.textContent = text;
  }

  var refreshes = 0;
  function refresh() {
    fetch(DATA_URL, { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (d) {
        render(d);
        refreshes++;
        document.body.setAttribute('data-refreshes', String(refreshes));
        if (d.t.length > 0) document.body.setAttribute('data-ready', 'true');
        setConn('live', 'live \\u00b7 updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (err) {
        setConn('error', 'cannot reach the gateway (' + err.message + '), retrying');
      })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }

  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      Object.keys(plots).forEach(function (k) {
        var p = plots[k];
        p.plot.setSize({ width: Math.max(280, p.host.clientWidth), height: p.plot.height });
      });
    }, 150);
  });

  document.addEventListener('DOMContentLoaded', refresh);
})();
`;
