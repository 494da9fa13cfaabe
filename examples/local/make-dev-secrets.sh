#!/bin/sh
# Creates a throwaway CA, a server certificate (localhost, 127.0.0.1) and a client certificate
# in ./dev-secrets next to this script, for examples/local/tee-init.yaml. Valid for 30 days.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/dev-secrets"
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30"
openssl req -x509 $ec -keyout ca.key -out ca.crt -subj "/CN=tee-init local CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -x509 $ec -keyout server.key -out server.crt -subj "/CN=localhost" -CA ca.crt -CAkey ca.key \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
openssl req -x509 $ec -keyout client.key -out client.crt -subj "/CN=local client" -CA ca.crt -CAkey ca.key \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=clientAuth 2>/dev/null
echo "wrote $dir: ca.crt ca.key server.crt server.key client.crt client.key"
