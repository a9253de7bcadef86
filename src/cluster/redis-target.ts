/**
 * Where the shared store lives, from `cluster.redisUrl`:
 *  - `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS): one Redis;
 *  - `redis-cluster://[user:password@]host:port,host:port,...`: a Redis Cluster, from any of its nodes;
 *  - `redis-sentinel://[user:password@]host:port,host:port,.../masterName[/db]`: the master that these
 *    Sentinels name (they are asked again on failover).
 * `rediss-cluster://` and `rediss-sentinel://` connect to the Redis nodes with TLS.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: HostPort[]; auth: Auth; tls: boolean }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; db: number; auth: Auth; tls: boolean };

export interface HostPort {
  host: string;
  port: number;
}

export interface Auth {
  username?: string;
  password?: string;
}

export function parseRedisTarget(url: string): RedisTarget {
  const m = /^(rediss?)(?:-(cluster|sentinel))?:\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (!m || m[2] === undefined) return { kind: 'single', url };
  const [, scheme, kind, userinfo, hosts, path = ''] = m;
  const auth: Auth = {};
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    if (user !== '') auth.username = user;
    if (colon !== -1) auth.password = decodeURIComponent(userinfo.slice(colon + 1));
  }
  const list = hosts.split(',').map((h) => hostPort(h, kind === 'sentinel' ? 26379 : 6379));
  const tls = scheme === 'rediss';
  if (kind === 'cluster') return { kind: 'cluster', nodes: list, auth, tls };
  const [name = '', db = '0'] = path.split('/');
  if (name === '')
    throw new Error(`${redact(url)}: a redis-sentinel:// URL names the master after the hosts (/mymaster)`);
  return { kind: 'sentinel', sentinels: list, name: decodeURIComponent(name), db: Number(db) || 0, auth, tls };
}

function hostPort(text: string, defaultPort: number): HostPort {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a host[:port]: ${text}`);
  return { host: m[1], port: m[2] === undefined ? defaultPort : Number(m[2]) };
}

/** The URL without its password, for logs and messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
