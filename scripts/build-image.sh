#!/usr/bin/env bash
# Builds the image from the Dockerfile with Debian's buildah: no daemon, no image registry. Called from
# .ci/run before npm test; test/image.test.ts calls it too, so a developer gets the image it tests.
#
#   bash scripts/build-image.sh           # cdf-gateway:local, unless it is already built from these sources
#   bash scripts/build-image.sh --force   # build again (buildah's layer cache still applies)
#   IMAGE=cdf-gateway:dev bash scripts/build-image.sh
#
# Needs root and `apt-get install buildah debootstrap`. No image registry is reachable here, so the
# Dockerfile's base (node:22-slim) is a stand-in made on this machine when missing: a minimal Debian of the
# host's release with the host's node and npm where the official image has them and its "node" user
# (uid 1000). npm in the build reaches the registry as the host's npm does: the host's CA bundle goes in as
# the build secret npm_ca and the proxy variables as build-time environment, as docs/deploy.md ("Behind a
# company proxy") tells users to do; neither stays in the image. Everything the Dockerfile says runs as
# written. The last line of stdout is the image's ID; the rest goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE=${IMAGE:-cdf-gateway:local}
FORCE=false
case "${1:-}" in
  --force) FORCE=true ;;
  '') ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# Bump when the stand-in's recipe below changes, so cached stand-ins are made again.
STAND_IN_RECIPE=1

log() { echo "build-image: $*" >&2; }
die() { echo "build-image: $*" >&2; exit 1; }

command -v buildah >/dev/null || die "no buildah: apt-get install buildah debootstrap"
[ "$(id -u)" = 0 ] || die "buildah's chroot isolation needs root here"

# One build at a time on this machine: the stand-in and the tags are shared by every checkout.
mkdir -p /run/lock
exec 9>/run/lock/cdf-gateway-build-image.lock
flock 9

# Every stage of the Dockerfile starts from the same base.
BASE=$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)
[ -n "$BASE" ] || die "no FROM in the Dockerfile"
# What a short name like node:22-slim means to Docker: buildah finds the stand-in under that name.
case "$BASE" in
  */*/*) BASE_REF=$BASE ;;
  */*) BASE_REF=docker.io/$BASE ;;
  *) BASE_REF=docker.io/library/$BASE ;;
esac

label() { # label IMAGE KEY: the label's value, empty when the image or the label is missing
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# --- the stand-in for the base image ---------------------------------------------------------------

# The Debian mirror and release the host's apt uses: the host's node is built for that release's glibc.
debian_source() {
  local suite uri
  # shellcheck disable=SC1091
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  uri=$(awk -v suite="$suite" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) { print uri; exit } }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
  fi
  [ -n "$suite" ] && [ -n "$uri" ] || die "cannot tell the host's Debian release and mirror from /etc/apt"
  echo "$suite $uri"
}

NODE_BIN=$(readlink -f "$(command -v node)")
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
STAND_IN_KEY="recipe=$STAND_IN_RECIPE node=$("$NODE_BIN" --version) npm=$(npm --version)"

build_stand_in() {
  command -v debootstrap >/dev/null || die "no debootstrap: apt-get install debootstrap"
  local suite mirror ctr root
  read -r suite mirror < <(debian_source)
  log "making the stand-in $BASE_REF: Debian $suite (minbase), node $("$NODE_BIN" --version), npm $(npm --version)"
  ctr=$(buildah from scratch)
  # shellcheck disable=SC2064
  trap "buildah rm '$ctr' >/dev/null 2>&1 || true" EXIT
  root=$(buildah mount "$ctr")
  if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1; then
    tail -n 30 "$root.debootstrap.log" >&2
    die "debootstrap failed (the log above)"
  fi
  rm -f "$root.debootstrap.log"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

  # Where the official image has them: /usr/local, so npm's global prefix and config are /usr/local's.
  install -D -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # The official image's entrypoint: runs the command it is given (with node when it is not one).
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  chroot "$root" node --version >/dev/null || die "the host's node does not run in the stand-in"

  buildah umount "$ctr" >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$("$NODE_BIN" --version | cut -c2-)" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd node \
    --label "cdf-gateway.stand-in=$STAND_IN_KEY" \
    "$ctr"
  buildah commit --quiet --format docker --rm "$ctr" "$BASE_REF" >/dev/null
  trap - EXIT
}

if [ "$(label "$BASE_REF" cdf-gateway.stand-in)" != "$STAND_IN_KEY" ]; then
  started=$SECONDS
  build_stand_in
  log "stand-in $BASE_REF made in $((SECONDS - started)) s"
fi

# --- the image ---------------------------------------------------------------------------------------

# What the build reads: the Dockerfile, .dockerignore, what its COPY lines take from the context, the base.
inputs_digest() {
  local sources
  sources=$(awk 'toupper($1) == "COPY" {
      for (i = 2; i < NF; i++) { if ($i ~ /^--from=/) next; if ($i !~ /^--/) print $i }
    }' Dockerfile)
  {
    buildah inspect --type image --format '{{.FromImageID}}' "$BASE_REF"
    # shellcheck disable=SC2086
    find Dockerfile .dockerignore $sources -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-64
}

# How the host's npm reaches the registry, for npm in the build. The CA bundle: npm's cafile, else node's
# NODE_EXTRA_CA_CERTS, else Debian's bundle. npm's proxy settings become the proxy variables, which
# buildah passes to the RUN steps only (--http-proxy, on by default), as Docker does with its own.
NPM_CONFIG=$(npm config get cafile https-proxy proxy noproxy registry 2>/dev/null || true)
npm_setting() { # npm's value for KEY, empty when unset
  local value
  value=$(sed -n "s/^$1=//p" <<<"$NPM_CONFIG")
  [ "$value" = null ] || [ "$value" = undefined ] || echo "$value"
}
NPM_CA=$(npm_setting cafile)
NPM_CA=${NPM_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
[ -r "$NPM_CA" ] || die "no CA bundle at $NPM_CA for npm in the build (npm config cafile, NODE_EXTRA_CA_CERTS)"
HTTPS_PROXY=${HTTPS_PROXY:-$(npm_setting https-proxy)}
HTTP_PROXY=${HTTP_PROXY:-$(npm_setting proxy)}
NO_PROXY=${NO_PROXY:-$(npm_setting noproxy)}
for var in HTTPS_PROXY HTTP_PROXY NO_PROXY; do
  if [ -n "${!var}" ]; then export "${var?}"; else unset "$var"; fi
done
registry=$(npm_setting registry)
if [ -n "$registry" ] && [ "${registry%/}" != https://registry.npmjs.org ]; then
  log "warning: the host's npm uses the registry $registry; npm in the build uses npm's default"
fi

DIGEST=$(inputs_digest)
if ! $FORCE && [ "$(label "$IMAGE" cdf-gateway.inputs)" = "$DIGEST" ]; then
  log "$IMAGE is up to date (inputs $(echo "$DIGEST" | cut -c1-12))"
else
  started=$SECONDS
  # --format docker: OCI's image format has no HEALTHCHECK. --pull=never: the base is the stand-in.
  buildah build --isolation chroot --network host --pull=never --layers --force-rm --format docker \
    --secret id=npm_ca,src="$NPM_CA" \
    --label "cdf-gateway.inputs=$DIGEST" --tag "$IMAGE" --file Dockerfile . >&2
  log "$IMAGE built in $((SECONDS - started)) s"
fi
printf '%s\n' "$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE")"
