(() => {
  const REFRESH_MS = 2000;
  const MAX_CLIENT_LINES = 8;
  const DATA_URL = '/dashboard/data.json';
  const PALETTE = [
    '#2563eb',
    '#ea580c',
    '#16a34a',
    '#9333ea',
    '#0891b2',
    '#db2777',
    '#ca8a04',
    '#4b5563',
    '#65a30d',
    '#7c3aed',
  ];
  const GRID = { stroke: '#e2e8f0', width: 1 };
  const TICKS = { stroke: '#cbd5e1', width: 1, size: 4 };
  const plots = {};
  const colorOf = {};
  let nextColor = 0;
  let resizeTimer = null;

  function color(key) {
    if (!colorOf[key]) colorOf[key] = PALETTE[nextColor++ % PALETTE.length];
    return colorOf[key];
  }

  function statusColor(code) {
    const c = Number(code);
    if (c === 429) return '#dc2626';
    if (c === 499) return '#94a3b8';
    if (c >= 500) return c === 503 ? '#7e22ce' : '#a855f7';
    if (c >= 400) return ['#f59e0b', '#d97706', '#b45309', '#92400e'][c % 4];
    if (c >= 300) return '#0891b2';
    return ['#16a34a', '#15803d', '#4d7c0f', '#22c55e'][c % 4];
  }

  function fmt(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '-';
    const a = Math.abs(v);
    let s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
    if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/[.]$/, '');
    return s;
  }

  function clock(sec) {
    const d = new Date(sec * 1000);
    const two = (n) => (n < 10 ? `0${n}` : String(n));
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function lastN(arr, n) {
    const out = [];
    for (let i = Math.max(0, arr.length - n); i < arr.length; i++) if (arr[i] !== null) out.push(arr[i]);
    return out;
  }
  function mean(arr) {
    if (arr.length === 0) return null;
    let s = 0;
    for (let i = 0; i < arr.length; i++) s += arr[i];
    return s / arr.length;
  }
  function sum(arr) {
    let s = 0;
    for (let i = 0; i < arr.length; i++) s += arr[i] || 0;
    return s;
  }
  function last(arr) {
    for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== null) return arr[i];
    return null;
  }

  // One uPlot per key; rebuilt only when its series change, else fed new data.
  function draw(key, host, spec, t) {
    const sig = spec.series.map((s) => `${s.label}/${s.color}`).join('|');
    const data = [t].concat(spec.series.map((s) => s.data));
    let points = 0;
    spec.series.forEach((s) => {
      s.data.forEach((v) => {
        if (v !== null) points++;
      });
    });
    host.setAttribute('data-points', String(points));
    const entry = plots[key];
    if (entry && entry.sig === sig && entry.host === host) {
      entry.plot.setData(data);
      return;
    }
    if (entry) entry.plot.destroy();
    const unit = spec.unit;
    const opts = {
      width: Math.max(280, host.clientWidth),
      height: spec.height || 210,
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            if (min === null || max === null) {
              const now = Date.now() / 1000;
              return [now - 60, now];
            }
            return [Math.min(min, max - 30), max];
          },
        },
        y: {
          range: (_u, _min, max) => {
            const top = spec.max !== undefined ? spec.max : Math.max(spec.minTop || 1, (max || 0) * 1.15);
            return [0, top];
          },
        },
      },
      axes: [
        {
          stroke: '#64748b',
          grid: GRID,
          ticks: TICKS,
          font: '11px system-ui, sans-serif',
          space: 64,
          values: (_u, splits) => splits.map(clock),
        },
        {
          stroke: '#64748b',
          grid: GRID,
          ticks: TICKS,
          size: 52,
          font: '11px system-ui, sans-serif',
          values: (_u, splits) => splits.map((v) => fmt(v) + (spec.axisSuffix || '')),
        },
      ],
      // Without a cursor the legend shows the latest values; hovering shows the values at that second.
      series: [
        {
          label: 'time',
          value: (_u, v, _si, idx) => (idx === null || idx === undefined || v === null ? 'latest' : clock(v)),
        },
      ].concat(
        spec.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width || 2,
          dash: s.dash,
          fill: s.fill,
          points: { show: false },
          value: (u, v, si, idx) => {
            if (idx === null || idx === undefined) v = last(u.data[si]);
            return v === null || v === undefined ? '-' : `${fmt(v)} ${unit}`;
          },
        })),
      ),
    };
    plots[key] = { plot: new uPlot(opts, data, host), sig: sig, host: host };
  }

  function tile(label, value, note, tone) {
    const t = el('div', 'tile');
    if (tone) t.setAttribute('data-tone', tone);
    t.appendChild(el('div', 'label', label));
    t.appendChild(el('div', 'value', value));
    t.appendChild(el('div', 'note', note));
    return t;
  }

  function renderTiles(d) {
    const host = document.getElementById('tiles');
    const c = d.current;
    const tot = c.totals;
    const rps = mean(lastN(d.requests.total, 10));
    const ratio = tot.cacheable > 0 ? `${Math.round((100 * tot.cacheSpared) / tot.cacheable)} %` : 'n/a';
    const circuitTone = c.circuit === 'closed' ? 'ok' : c.circuit === 'open' ? 'bad' : 'warn';
    const circuitNote =
      c.circuit === 'closed'
        ? 'calls flow to CDF'
        : c.circuit === 'open'
          ? 'failing fast: CDF keeps failing'
          : 'one probe call let through';
    const recentErrors = sum(lastN(d.errors.answers5xx, 60)) + sum(lastN(d.errors.upstreamFailures, 60));
    const tiles = [
      tile('Requests / s', fmt(rps === null ? 0 : rps), `average of the last 10 s; ${tot.requests} since start`),
      tile(
        '429 from CDF',
        String(tot.upstream429),
        `${tot.retried} retried, ${tot.passedOn} passed on (since start)`,
        tot.passedOn > 0 ? 'warn' : undefined,
      ),
      tile(
        '429 from the queue',
        String(tot.gateway429),
        "the gateway's own: queue full or wait too long (since start)",
        tot.gateway429 > 0 ? 'warn' : undefined,
      ),
      tile(
        'Errors (5xx)',
        String(tot.errors5xx),
        `${tot.upstreamFailures} upstream failures (since start)`,
        recentErrors > 0 ? 'bad' : tot.errors5xx + tot.upstreamFailures > 0 ? 'warn' : 'ok',
      ),
      tile(
        'Cache hit ratio',
        ratio,
        `${tot.cacheable} cacheable requests${c.cache ? `, ${c.cache.entries} entries held` : ''}`,
      ),
      tile('Circuit breaker', c.circuit, circuitNote, circuitTone),
      tile(
        'Quota store',
        c.store.mode,
        c.store.healthy ? 'healthy' : 'unreachable: local fallback',
        c.store.healthy ? 'ok' : 'bad',
      ),
    ];
    host.replaceChildren.apply(host, tiles);
  }

  function renderBuckets(d) {
    const names = Object.keys(d.buckets).sort();
    const grid = document.getElementById('buckets');
    document.getElementById('buckets-empty').hidden = names.length > 0;
    const keep = {};
    names.forEach((name) => {
      const b = d.buckets[name];
      const id = `bucket-${name}`;
      keep[id] = true;
      let card = grid.querySelector(`[data-bucket="${CSS.escape(name)}"]`);
      if (!card) {
        card = el('div', 'bucket');
        card.setAttribute('data-bucket', name);
        const h = el('h4', null, name);
        h.appendChild(el('span', 'unit', 'calls per second'));
        card.appendChild(h);
        card.appendChild(el('div', 'meta'));
        const chart = el('div', 'chart');
        chart.setAttribute('data-chart', id);
        card.appendChild(chart);
        grid.appendChild(card);
      }
      const eff = last(b.effectiveRate);
      const conf = last(b.configuredRate);
      const use = mean(lastN(b.admitted, 10));
      const pct = eff ? Math.round((100 * (use || 0)) / eff) : 0;
      card.querySelector('.meta').textContent =
        `using ${pct} % of the effective limit (${fmt(eff)} of ${fmt(conf)} calls/s configured)`;
      draw(
        id,
        card.querySelector('.chart'),
        {
          unit: 'calls/s',
          height: 170,
          series: [
            { label: 'admitted', data: b.admitted, color: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)' },
            { label: 'effective limit', data: b.effectiveRate, color: '#ea580c' },
            { label: 'configured limit', data: b.configuredRate, color: '#94a3b8', dash: [6, 4], width: 1.5 },
          ],
        },
        d.t,
      );
    });
    Array.prototype.slice.call(grid.children).forEach((card) => {
      const id = `bucket-${card.getAttribute('data-bucket')}`;
      if (!keep[id]) {
        if (plots[id]) {
          plots[id].plot.destroy();
          delete plots[id];
        }
        card.remove();
      }
    });

    const tbody = document.querySelector('#bucket-table tbody');
    document.getElementById('bucket-table').hidden = names.length === 0;
    tbody.replaceChildren.apply(
      tbody,
      names.map((name) => {
        const b = d.buckets[name];
        const tr = el('tr');
        const refused = sum(b.rejected.map((v) => (v === null ? 0 : v)));
        const waits = lastN(b.waitAvgMs, 10);
        const cells = [
          // Learned buckets: made from CDF's 429s for an operation, class or API without a bucket of its own.
          b.learned ? `${name} (learned)` : name,
          fmt(last(b.scopes)),
          fmt(mean(lastN(b.admitted, 10)) || 0),
          // The effective figure, the table's (a learned bucket's: the ceiling it may climb to), and where the
          // effective one stands: documented, configured, guessed, stated or learned.
          `${fmt(last(b.effectiveRate))} / ${fmt(last(b.configuredRate))} ${b.rateSource ?? ''}`,
          `${fmt(last(b.inFlight))} / ${fmt(last(b.effectiveConcurrency))} ${b.concurrencySource ?? ''}`,
          fmt(last(b.queued)),
          waits.length ? `${fmt(mean(waits))} ms` : '-',
          fmt(Math.round(refused)),
        ];
        cells.forEach((text, i) => {
          const td = el('td', null, text);
          if ((i === 7 && refused >= 0.5) || (i === 5 && last(b.queued) > 0)) td.className = 'hot';
          tr.appendChild(td);
        });
        return tr;
      }),
    );
  }

  function perBucket(d, field) {
    return Object.keys(d.buckets)
      .sort()
      .map((name) => ({ label: name, data: d.buckets[name][field], color: color(`b:${name}`) }));
  }

  function renderShares(d) {
    const host = document.getElementById('sharebar');
    let entries = Object.keys(d.requests.byClient)
      .map((n) => ({ name: n, total: sum(lastN(d.requests.byClient[n], 60)), color: color(`c:${n}`) }))
      .filter((e) => e.total > 0)
      .sort((a, b) => b.total - a.total);
    const all = sum(entries.map((e) => e.total));
    if (entries.length > MAX_CLIENT_LINES) {
      const rest = entries.slice(MAX_CLIENT_LINES);
      entries = entries.slice(0, MAX_CLIENT_LINES);
      entries.push({ name: `${rest.length} more clients`, total: sum(rest.map((e) => e.total)), color: '#94a3b8' });
    }
    const segments = [];
    const legend = el('div', 'sharelegend');
    entries.forEach((e) => {
      const pct = (100 * e.total) / all;
      const s = el('span');
      s.style.width = `${pct}%`;
      s.style.background = e.color;
      s.title = `${e.name}: ${pct.toFixed(1)} %`;
      segments.push(s);
      const item = el('span');
      const swatch = el('i');
      swatch.style.background = e.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(`${e.name} ${pct.toFixed(0)} %`));
      legend.appendChild(item);
    });
    host.replaceChildren.apply(host, segments);
    const old = host.nextElementSibling;
    if (old?.classList.contains('sharelegend')) old.remove();
    host.after(legend);
  }

  // The busiest clients get a line each (byClient comes busiest first); the rest share one.
  function clientSeries(d) {
    const names = Object.keys(d.requests.byClient);
    const series = names
      .slice(0, MAX_CLIENT_LINES)
      .map((n) => ({ label: n, data: d.requests.byClient[n], color: color(`c:${n}`) }));
    const rest = names.slice(MAX_CLIENT_LINES);
    if (rest.length > 0) {
      const data = d.t.map((_, i) => {
        let total = 0;
        rest.forEach((n) => {
          total += d.requests.byClient[n][i] || 0;
        });
        return Math.round(total * 1000) / 1000;
      });
      series.push({ label: `${rest.length} more clients`, data: data, color: '#94a3b8', dash: [4, 3] });
    }
    return series;
  }

  function chartHost(name) {
    return document.querySelector(`[data-chart="${name}"]`);
  }

  function duration(sec) {
    sec = Math.max(0, Math.floor(sec));
    const d = Math.floor(sec / 86400),
      h = Math.floor((sec % 86400) / 3600),
      m = Math.floor((sec % 3600) / 60);
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    return `${m}m ${sec % 60}s`;
  }

  function renderBuild(d) {
    const host = document.getElementById('build');
    const parts = [
      ['version', d.build.version],
      ['up', duration(d.now - d.startedAt)],
      ['upstream', d.build.upstream],
      ['node', d.build.node],
    ];
    if (d.build.reloadedAt) parts.push(['config reloaded', clock(d.build.reloadedAt)]);
    host.replaceChildren.apply(
      host,
      parts.reduce((out, p, i) => {
        if (i > 0) out.push(document.createTextNode(' \u00b7 '));
        out.push(document.createTextNode(`${p[0]} `));
        out.push(el('b', null, p[1]));
        return out;
      }, []),
    );
  }

  function render(d) {
    renderBuild(d);
    renderTiles(d);
    renderBuckets(d);
    draw('queue', chartHost('queue'), { unit: 'waiting', series: perBucket(d, 'queued') }, d.t);
    draw('wait', chartHost('wait'), { unit: 'ms', axisSuffix: ' ms', series: perBucket(d, 'waitAvgMs') }, d.t);
    const th = d.throttling;
    draw(
      'throttling',
      chartHost('throttling'),
      {
        unit: '/s',
        series: [
          { label: '429 from CDF', data: th.upstream429, color: '#dc2626', fill: 'rgba(220, 38, 38, 0.08)' },
          { label: 'retried by the gateway', data: th.retried, color: '#16a34a' },
          { label: 'passed on to the app', data: th.passedOn, color: '#ea580c', dash: [5, 3] },
          { label: "429 from the gateway's queue", data: th.gateway429, color: '#7c3aed' },
        ],
      },
      d.t,
    );
    draw(
      'status',
      chartHost('status'),
      {
        unit: '/s',
        series: Object.keys(d.requests.byStatus).map((code) => ({
          label: code,
          data: d.requests.byStatus[code],
          color: statusColor(code),
        })),
      },
      d.t,
    );
    draw(
      'latency',
      chartHost('latency'),
      {
        unit: 'ms',
        axisSuffix: ' ms',
        series: [
          { label: 'p50', data: d.upstream.p50, color: '#2563eb', fill: 'rgba(37, 99, 235, 0.08)' },
          { label: 'p95', data: d.upstream.p95, color: '#ea580c' },
          { label: 'p99', data: d.upstream.p99, color: '#dc2626', dash: [5, 3] },
        ],
      },
      d.t,
    );
    draw(
      'errors',
      chartHost('errors'),
      {
        unit: '/s',
        series: [
          { label: '5xx to apps', data: d.errors.answers5xx, color: '#a855f7', fill: 'rgba(168, 85, 247, 0.08)' },
          { label: 'upstream failures', data: d.errors.upstreamFailures, color: '#dc2626', dash: [5, 3] },
        ],
      },
      d.t,
    );
    draw(
      'appwait',
      chartHost('appwait'),
      {
        unit: 'ms',
        axisSuffix: ' ms',
        series: Object.keys(d.appWait)
          .slice(0, MAX_CLIENT_LINES)
          .map((n) => ({ label: n, data: d.appWait[n], color: color(`c:${n}`) })),
      },
      d.t,
    );
    renderShares(d);
    draw('clients', chartHost('clients'), { unit: '/s', series: clientSeries(d) }, d.t);
    const anyCache = d.current.totals.cacheable > 0;
    document.getElementById('cache-empty').hidden = anyCache;
    draw(
      'cache',
      chartHost('cache'),
      {
        unit: '%',
        axisSuffix: ' %',
        max: 100,
        series: [
          {
            label: 'hit ratio',
            data: d.cache.hitRatio.map((v) => (v === null ? null : Math.round(v * 1000) / 10)),
            color: '#0891b2',
            fill: 'rgba(8, 145, 178, 0.1)',
          },
        ],
      },
      d.t,
    );
  }

  function setConn(state, text) {
    const c = document.getElementById('conn');
    c.setAttribute('data-state', state);
    c.textContent = text;
  }

  let refreshes = 0;
  function refresh() {
    fetch(DATA_URL, { cache: 'no-store', headers: { accept: 'application/json' } })
      .then((res) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.json();
      })
      .then((d) => {
        render(d);
        refreshes++;
        document.body.setAttribute('data-refreshes', String(refreshes));
        if (d.t.length > 0) document.body.setAttribute('data-ready', 'true');
        setConn('live', `live \u00b7 updated ${new Date().toLocaleTimeString()}`);
      })
      .catch((err) => {
        setConn('error', `cannot reach the gateway (${err.message}), retrying`);
      })
      .then(() => {
        setTimeout(refresh, REFRESH_MS);
      });
  }

  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      Object.keys(plots).forEach((k) => {
        const p = plots[k];
        p.plot.setSize({ width: Math.max(280, p.host.clientWidth), height: p.plot.height });
      });
    }, 150);
  });

  document.addEventListener('DOMContentLoaded', refresh);
})();
