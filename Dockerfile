# cdf-gateway image. See docs/deploy.md.
#
#   docker build -t cdf-gateway .
#   docker run --init --rm -p 127.0.0.1:8080:8080 -e CDF_BASE_URL=https://api.cognitedata.com cdf-gateway
#
# /metrics and /dashboard are served on the admin port METRICS_PORT (9464), apart from the proxy's port and
# not published by default (add -p 127.0.0.1:9464:9464 to see them; METRICS_TOKEN requires a bearer token).
#
# Configuration is by environment (CDF_BASE_URL, HOST, PORT, LOG_LEVEL) and an optional YAML file
# layered over config/default.yaml: mount it and set GATEWAY_CONFIG=/etc/cdf-gateway/config.yaml.
#
# Behind a TLS-inspecting proxy, give npm the CA bundle that trusts it as the build secret npm_ca, which
# no layer keeps (docs/deploy.md, "Behind a company proxy"; scripts/build-image.sh builds so here):
#   docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t cdf-gateway .

# --- build: all dependencies, TypeScript compiled to dist/ ---------------------------------------
FROM node:22-slim AS build
WORKDIR /app
# Dependencies first so the layer is reused while only the sources change. --ignore-scripts: the
# package's prepare script (the build) needs the sources, which are not copied yet; no dependency has
# an install script of its own. npm reads its cafile from the secret's mount; without the secret there
# is no such file and npm keeps its own CAs (it skips a cafile that does not exist).
ARG npm_config_cafile=/run/secrets/npm_ca
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-static.mjs ./scripts/
COPY src ./src
RUN npm run build

# --- run: production dependencies, dist/ and config/ only --------------------------------------
FROM node:22-slim
# CMD is the gateway's one launch, as `npm start` and the package's bin launch it: --v8-pool-size=1 keeps
# one V8 helper thread instead of four (a sidecar has a core or less): 5-7 MiB less idle RSS, CPU per call
# and per MiB within the benchmarks' noise (docs/design.md, "Idle footprint"; `npm run bench -- memory` and
# `-- overhead` measure the gateway launched so). glibc's MALLOC_TRIM_THRESHOLD_ would take 2-3 MiB more, at
# 12 % more CPU per MiB of 1 MiB answers in one measurement; `docker run -e MALLOC_TRIM_THRESHOLD_=131072`.
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 METRICS_PORT=9464
WORKDIR /app
ARG npm_config_cafile=/run/secrets/npm_ca
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config

# The files above belong to root and are read-only for the gateway; it runs as the image's
# unprivileged "node" user (uid 1000) and writes nothing to disk.
USER node
EXPOSE 8080

# No curl or wget in the slim image: Node's own fetch. Exit 1 when the gateway does not answer 200.
# It calls loopback on $PORT, so it suits HOST=0.0.0.0 (the default here) or 127.0.0.1.
# No --start-period: the gateway listens within a second, and dockerfilelint 1.8 rejects that option
# (its option pattern stops at the hyphen); three retries 10 s apart are grace enough.
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM itself (no shell in between). The gateway handles
# SIGTERM/SIGINT: /readyz turns 503, requests in flight get server.shutdownGraceMs (default 10 s) to
# finish, then it exits 0 - so give `docker stop -t` / stop_grace_period / terminationGracePeriodSeconds
# more than that. It starts no child processes, so no init is needed to reap zombies; `docker run --init`
# (compose `init: true`) adds one anyway and is recommended. The image carries no tini of its own.
CMD ["node", "--v8-pool-size=1", "dist/main.js"]
