#!/usr/bin/env bash
# Lints the Docker files without a Docker engine: docker-compose.yml with dclint, the Dockerfile with
# dockerfilelint. Both come from the devDependencies. Called from .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --max-warnings 0: dclint's style rules (key order, quoted ports, ...) only warn; fail on them too.
# Rules are disabled, if ever, in docker-compose.yml itself with a "# dclint disable-line <rule>" and a reason.
echo "dclint docker-compose.yml"
npx --no-install dclint docker-compose.yml --max-warnings 0

echo "dockerfilelint Dockerfile"
npx --no-install dockerfilelint Dockerfile
