// A stand-in for your application, for docker-compose.yml: it lists one asset through the gateway
// every few seconds and logs the outcome. No dependencies; runs on node:22-slim as it is.
//
// Environment:
//   GATEWAY_URL        the gateway, default http://gateway:8080
//   CDF_PROJECT        the CDF project (required)
//   CDF_TOKEN          a bearer token, sent as is (the gateway forwards it to CDF); or, instead,
//   CDF_TOKEN_URL, CDF_CLIENT_ID, CDF_CLIENT_SECRET, CDF_SCOPES
//                      OAuth client credentials: the app fetches (and renews) its own token
//   INTERVAL_MS        pause between calls, default 5000
//
// Against the simulator (compose profile "sim") any token will do.

const gatewayUrl = (process.env.GATEWAY_URL || 'http://gateway:8080').replace(/\/+$/, '');
const project = process.env.CDF_PROJECT;
const intervalMs = Number(process.env.INTERVAL_MS || 5000);
if (!project) {
  console.error('sidecar-app: set CDF_PROJECT');
  process.exit(2);
}

let token = { value: process.env.CDF_TOKEN || 'dummy-token', expiresAt: Number.POSITIVE_INFINITY };

/** A token from the client-credentials flow when CDF_TOKEN_URL is set; renewed a minute before expiry. */
async function bearer() {
  const tokenUrl = process.env.CDF_TOKEN_URL;
  if (!tokenUrl || Date.now() < token.expiresAt - 60_000) return token.value;
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: process.env.CDF_CLIENT_ID ?? '',
      client_secret: process.env.CDF_CLIENT_SECRET ?? '',
      scope: process.env.CDF_SCOPES ?? '',
    }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
  const body = await res.json();
  token = { value: body.access_token, expiresAt: Date.now() + Number(body.expires_in ?? 3600) * 1000 };
  return token.value;
}

async function once() {
  const url = `${gatewayUrl}/api/v1/projects/${encodeURIComponent(project)}/assets?limit=1`;
  const started = Date.now();
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${await bearer()}`, 'x-cdf-gateway-client': 'sidecar-app' },
      signal: AbortSignal.timeout(60_000),
    });
    const body = await res.text();
    const ms = Date.now() - started;
    if (res.ok) {
      const items = JSON.parse(body).items ?? [];
      console.log(
        JSON.stringify({ msg: 'assets listed', status: res.status, ms, first: items[0]?.externalId ?? items[0]?.id }),
      );
    } else {
      console.log(JSON.stringify({ msg: 'call failed', status: res.status, ms, body: body.slice(0, 300) }));
    }
  } catch (err) {
    console.log(JSON.stringify({ msg: 'gateway unreachable', error: String(err?.cause ?? err) }));
  }
}

let timer;
let stopping = false;
async function loop() {
  await once();
  if (!stopping) timer = setTimeout(loop, intervalMs);
}
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    stopping = true;
    clearTimeout(timer);
    process.exit(0);
  });
}
void loop();
