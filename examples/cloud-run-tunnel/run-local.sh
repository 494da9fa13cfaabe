#!/bin/sh
# The reference demo's flow on this machine, with tee-init at both ends and no Envoy: the server
# side (tunnel listener + Congrats server) in the background, then the client side, whose
# program prints the server's greeting; its exit status is the demo's result.
# Needs openssl (for the throwaway certificates) and the listener engine in the bundle.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
node=${NODE:-$repo/node_modules/.bin/node}
[ -f "$repo/examples/local/dev-secrets/ca.crt" ] || sh "$repo/examples/local/make-dev-secrets.sh"
[ -f "$repo/dist/tee-init.js" ] || "$node" "$repo/scripts/build.mjs"
cd "$here"
"$node" "$repo/dist/tee-init.js" --config local/server.yaml &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM
"$node" "$repo/dist/tee-init.js" --config local/client.yaml
