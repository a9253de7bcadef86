'use strict';
// Preloaded into every autocannon the benchmarks run (`node -r` this file, bench/lib/common.mjs).
//
// Why: autocannon 8 keeps each answer's body as a string, chunk by chunk (`req.body += data` in
// lib/pipelinedRequestsQueue.js), for `onResponse`/`expectBody`, which no benchmark here uses. On large answers
// that decoding and concatenating was most of the load core's work: ~3 ms of autocannon CPU per MiB against
// 1.2-2 ms for the proxy under test, and it grew with how many answers were half received at once, so a proxy
// that serves its 64 connections evenly (all of them mid-answer) made autocannon slower than one that serves a
// few at a time. The load core, not the proxy, then set large-body throughput. Bodies are still read, parsed
// and counted (bytes, status, latency); they are no longer kept. Measured in docs/design.md ("Large bodies").
const { dirname, join } = require('node:path');

const autocannonDir = dirname(require.resolve('autocannon/package.json', { paths: [join(__dirname, '..', '..')] }));
require(join(autocannonDir, 'lib', 'pipelinedRequestsQueue.js')).prototype.addBody = function addBody() {};
