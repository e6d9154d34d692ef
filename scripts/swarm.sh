#!/usr/bin/env bash
# The pieces of a Docker Swarm cluster that parallax-docker runs agents on (docs/swarm.md):
#
#   swarm.sh ca DIR
#       The cluster's CA (DIR/ca.pem, DIR/ca-key.pem) and the runtime's client certificate
#       (DIR/cert.pem, DIR/key.pem): PARALLAX_SWARM_TLS_DIR=DIR. Kept when they exist.
#   swarm.sh node-cert DIR NAME ADDRESS...
#       A node engine's server certificate (DIR/NAME.pem, DIR/NAME-key.pem) for its addresses.
#   swarm.sh daemon-json --tls DIR --name NAME --address ADDR --registry HOST:PORT
#                        [--port 2376] [--socket /var/run/docker.sock] [--runtime runc]
#       The node's /etc/docker/daemon.json: its engine on the Unix socket and on TCP with mutual
#       TLS only, and the controls API 1.41 cannot set per service (no-new-privileges, private
#       IPC, rotated json-file logs), the cluster's registry, and its runtime's label.
#   swarm.sh registry start DIR ADDRESS:PORT | registry stop DIR
#       The cluster's registry (Debian's docker-registry) with its blobs under DIR.
#
# Needs openssl and, for the registry, the docker-registry package (scripts/setup.sh --dev
# installs both).
set -euo pipefail

die() { echo "swarm.sh: $*" >&2; exit 2; }

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

# sign DIR NAME SUBJECT EXTENSIONS: a certificate of the cluster's CA for DIR/NAME-key.pem.
sign() {
  local dir=$1 name=$2 subject=$3 ext=$4
  local key="$dir/$name-key.pem" out="$dir/$name.pem"
  [ "$name" = cert ] && key="$dir/key.pem"
  new_key "$key"
  openssl req -new -key "$key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -days 825 -sha256 -extfile "$dir/$name.ext" -out "$out" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

cmd_ca() {
  local dir=${1:?DIR}
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ ! -s "$dir/ca.pem" ]; then
    new_key "$dir/ca-key.pem"
    openssl req -x509 -new -key "$dir/ca-key.pem" -days 825 -sha256 \
      -subj "/CN=parallax swarm CA" -out "$dir/ca.pem" 2>/dev/null
  fi
  if [ ! -s "$dir/cert.pem" ]; then
    sign "$dir" cert "/CN=parallax-runtime" "extendedKeyUsage=clientAuth"
  fi
}

cmd_node_cert() {
  local dir=${1:?DIR} name=${2:?NAME}
  shift 2
  [ $# -gt 0 ] || die "node-cert needs at least one address"
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad node name: $name"
  local sans="DNS:$name" address
  for address in "$@"; do
    if [[ $address =~ ^[0-9.]+$ || $address == *:* ]]; then sans+=",IP:$address"; else sans+=",DNS:$address"; fi
  done
  sign "$dir" "$name" "/CN=$name" "subjectAltName=$sans
extendedKeyUsage=serverAuth"
}

cmd_daemon_json() {
  local tls="" name="" address="" registry="" port=2376 socket=/var/run/docker.sock runtime=runc
  while [ $# -gt 0 ]; do
    case $1 in
      --tls) tls=$2 ;; --name) name=$2 ;; --address) address=$2 ;; --registry) registry=$2 ;;
      --port) port=$2 ;; --socket) socket=$2 ;; --runtime) runtime=$2 ;;
      *) die "unknown option $1" ;;
    esac
    shift 2
  done
  [ -n "$tls" ] && [ -n "$name" ] && [ -n "$address" ] && [ -n "$registry" ] ||
    die "daemon-json needs --tls, --name, --address and --registry"
  cat <<EOF
{
  "hosts": ["unix://$socket", "tcp://$address:$port"],
  "tlsverify": true,
  "tlscacert": "$tls/ca.pem",
  "tlscert": "$tls/$name.pem",
  "tlskey": "$tls/$name-key.pem",
  "no-new-privileges": true,
  "default-ipc-mode": "private",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "insecure-registries": ["$registry"],
  "labels": ["parallax.runtime=$runtime"]
}
EOF
}

cmd_registry() {
  local action=${1:?start or stop} dir=${2:?DIR}
  case $action in
    start)
      local address=${3:?ADDRESS:PORT}
      command -v docker-registry >/dev/null || die "docker-registry is not installed (apt-get install docker-registry)"
      mkdir -p "$dir/data"
      cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $address
EOF
      nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
      echo $! >"$dir/registry.pid"
      for _ in $(seq 1 100); do
        curl -sf --max-time 1 "http://$address/v2/" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
        sleep 0.1
      done
      tail -5 "$dir/registry.log" >&2
      die "the registry did not come up on $address"
      ;;
    stop)
      if [ -s "$dir/registry.pid" ]; then
        kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
        rm -f "$dir/registry.pid"
      fi
      ;;
    *) die "registry start|stop" ;;
  esac
}

case ${1:-} in
  ca) shift; cmd_ca "$@" ;;
  node-cert) shift; cmd_node_cert "$@" ;;
  daemon-json) shift; cmd_daemon_json "$@" ;;
  registry) shift; cmd_registry "$@" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
