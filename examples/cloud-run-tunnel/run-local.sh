#!/bin/sh
# The reference demo's flow on this machine: see run-local.ts (it waits until the server side
# listens before it starts the client side, so the first tunnel never meets a closed port).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
node=${NODE:-$repo/node_modules/.bin/node}
[ -f "$repo/dist/tee-init.js" ] || "$node" "$repo/scripts/build.mjs"
exec "$node" "$here/run-local.ts"
