// The bare baseline for the overhead benchmark: fastify with no logger and @fastify/http-proxy to the
// upstream, nothing else. Usage: UPSTREAM=http://127.0.0.1:4000 PORT=8081 node bench/baseline-proxy.mjs
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = process.env.UPSTREAM;
if (!upstream) {
  console.error('UPSTREAM is required');
  process.exit(2);
}
const app = Fastify({ logger: false });
await app.register(proxy, { upstream });
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const { address, port } = app.server.address();
console.log(JSON.stringify({ msg: 'baseline proxy listening', url: `http://${address}:${port}` }));
const stop = () => app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
