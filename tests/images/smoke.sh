#!/usr/bin/env bash
# Contract checks for the local test images (run after tests/images/build.sh).
# Starts throw-away containers named ragctl-smoke-<pid>-*, publishes only on
# 127.0.0.1 at random high ports, and removes everything it started on exit.
set -euo pipefail

tag="ragctl-smoke-$$"
tmp="$(mktemp -d)"
started=()
cleanup() {
  [ ${#started[@]} -eq 0 ] || docker rm -f -v "${started[@]}" >/dev/null 2>&1 || true
  docker network rm "$tag-net" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
run() { local name="$tag-$1"; shift; started+=("$name"); docker run -d --name "$name" "$@" >/dev/null; }
port() { docker port "$tag-$1" "$2" | head -n1 | sed 's/.*://'; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
wait_for() { # wait_for SECONDS CMD...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt "$deadline" ] || return 1; sleep 0.1; done
}

# --- postgres -------------------------------------------------------------------
mkdir -p "$tmp/initdb"
cat >"$tmp/initdb/10-marker.sh" <<'SH'
#!/bin/bash
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "CREATE TABLE init_marker(note text); INSERT INTO init_marker VALUES ('sh');"
SH
chmod 755 "$tmp/initdb/10-marker.sh"
echo "INSERT INTO init_marker VALUES ('sql');" >"$tmp/initdb/20-marker.sql"
chmod -R a+rX "$tmp"
t=$(now)
run pg -p 127.0.0.1::5432 -e POSTGRES_PASSWORD=smoke-pw -e POSTGRES_USER=smoke -e POSTGRES_DB=smokedb -v "$tmp/initdb:/docker-entrypoint-initdb.d:ro" ragctl-test/postgres:15 -c max_connections=200
wait_for 60 docker exec "$tag-pg" pg_isready -h 127.0.0.1 -U smoke -d smokedb || fail "postgres not ready"
ok "postgres: pg_isready after $(since "$t") s"
pgport="$(port pg 5432)"
if command -v psql >/dev/null; then
  q() { PGPASSWORD="$1" psql -h 127.0.0.1 -p "$pgport" -U smoke -d smokedb -XAt -c "$2"; }
else
  q() { docker run --rm --network host -e PGPASSWORD="$1" ragctl-test/postgres:15 psql -h 127.0.0.1 -p "$pgport" -U smoke -d smokedb -XAt -c "$2"; }
fi
v="$(q smoke-pw 'SELECT version()')"; ok "postgres: host psql via 127.0.0.1:$pgport with password: $v"
if [ "$(q smoke-pw 'SHOW max_connections')" = 200 ]; then ok "postgres: extra args passed (max_connections=200)"; else fail "postgres: extra args passed (max_connections=200)"; fi
if [ "$(q smoke-pw "SELECT string_agg(note, ',' ORDER BY note) FROM init_marker")" = "sh,sql" ]; then ok "postgres: initdb.d *.sh and *.sql ran"; else fail "postgres: initdb.d *.sh and *.sql ran"; fi
if q wrong-pw 'SELECT 1' 2>/dev/null; then fail "postgres accepted a wrong password"; fi
ok "postgres: wrong password rejected"
if [ "$(docker exec "$tag-pg" ps -o user= -p 1)" = postgres ]; then ok "postgres: PID 1 runs as postgres"; else fail "postgres: PID 1 runs as postgres"; fi
t=$(now); docker stop "$tag-pg" >/dev/null
# Two: the entrypoint's init-time server, then this stop. (grep -c reads all: grep -q under pipefail could
# SIGPIPE docker logs and fail on a match.)
[ "$(docker logs "$tag-pg" 2>&1 | grep -c 'received fast shutdown request')" = 2 ] || fail "postgres: no fast shutdown"
ok "postgres: docker stop -> fast shutdown in $(since "$t") s"
docker start "$tag-pg" >/dev/null
wait_for 60 docker exec "$tag-pg" pg_isready -h 127.0.0.1 -q || fail "postgres restart"
if [ "$(docker logs "$tag-pg" 2>&1 | grep -c 'Skipping initialization')" = 1 ]; then ok "postgres: restart skips init"; else fail "postgres: restart skips init"; fi
docker network create "$tag-net" >/dev/null
docker network connect --alias primary "$tag-net" "$tag-pg"
docker exec "$tag-pg" bash -c 'echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"'
docker exec -u postgres "$tag-pg" pg_ctl reload -D /var/lib/postgresql/data >/dev/null
docker run --rm --network "$tag-net" -e PGPASSWORD=smoke-pw ragctl-test/postgres:15 pg_basebackup -h primary -U smoke -D /tmp/replica -R -X stream -c fast >/dev/null
ok "postgres: pg_basebackup -R from a second container"
out="$(docker run --rm ragctl-test/postgres:15 2>&1 || true)"
if grep -q 'superuser password is not specified' <<<"$out"; then ok "postgres: refuses to init without POSTGRES_PASSWORD"; else fail "postgres: refuses to init without POSTGRES_PASSWORD"; fi

# --- pgvector ---------------------------------------------------------------------
# The postgres contract (initdb env, password auth) plus the vector extension: created, queried by distance.
t=$(now)
run pgv -p 127.0.0.1::5432 -e POSTGRES_PASSWORD=smoke-pw -e POSTGRES_USER=smoke -e POSTGRES_DB=smokedb ragctl-test/pgvector:15
wait_for 60 docker exec "$tag-pgv" pg_isready -h 127.0.0.1 -U smoke -d smokedb || fail "pgvector not ready"
ok "pgvector: pg_isready after $(since "$t") s"
pgvport="$(port pgv 5432)"
vq() { PGPASSWORD=smoke-pw psql -h 127.0.0.1 -p "$pgvport" -U smoke -d smokedb -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
command -v psql >/dev/null || vq() { docker exec -i "$tag-pgv" psql -U smoke -d smokedb -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
v="$(vq "CREATE EXTENSION vector; SELECT extversion FROM pg_extension WHERE extname = 'vector'")"
ok "pgvector: CREATE EXTENSION vector -> $v"
vq "CREATE TABLE items (id int, embedding vector(3)); INSERT INTO items VALUES (1, '[1,2,3]'), (2, '[4,5,6]')" >/dev/null
if [ "$(vq "SELECT id FROM items ORDER BY embedding <-> '[3,4,5]' LIMIT 1")" = 2 ]; then ok "pgvector: nearest neighbour by L2 distance"; else fail "pgvector: nearest neighbour by L2 distance"; fi
if [ "$(docker exec "$tag-pgv" ps -o user= -p 1)" = postgres ]; then ok "pgvector: PID 1 runs as postgres"; else fail "pgvector: PID 1 runs as postgres"; fi
docker stop "$tag-pgv" >/dev/null

# --- redis ------------------------------------------------------------------------
t=$(now)
run redis ragctl-test/redis:7 redis-server --requirepass smoke-redis
wait_for 20 docker exec "$tag-redis" redis-cli -a smoke-redis --no-auth-warning PING || fail "redis not up"
if [ "$(docker exec "$tag-redis" redis-cli -a smoke-redis --no-auth-warning PING)" = PONG ]; then ok "redis: redis-cli -a PING -> PONG after $(since "$t") s"; else fail "redis: redis-cli -a PING -> PONG after $(since "$t") s"; fi
if docker exec "$tag-redis" redis-cli PING 2>&1 | grep -q NOAUTH; then ok "redis: no password -> NOAUTH"; else fail "redis: no password -> NOAUTH"; fi
if [ "$(docker exec "$tag-redis" ps -o user= -p 1)" = redis ]; then ok "redis: PID 1 runs as redis"; else fail "redis: PID 1 runs as redis"; fi
t=$(now); docker stop "$tag-redis" >/dev/null; ok "redis: docker stop in $(since "$t") s"

# --- nginx ------------------------------------------------------------------------
if docker run --rm ragctl-test/nginx:1 nginx -t 2>&1 | grep -q 'test is successful'; then ok "nginx: nginx -t"; else fail "nginx: nginx -t"; fi
if docker run --rm ragctl-test/nginx:1 openssl version >/dev/null; then ok "nginx: openssl present"; else fail "nginx: openssl present"; fi
run nginx -p 127.0.0.1::80 ragctl-test/nginx:1
np="$(port nginx 80)"
wait_for 20 curl -fsS "http://127.0.0.1:$np/" || fail "nginx not serving"
ok "nginx: serves the default page on 127.0.0.1:$np"

# --- weaviate stand-in -----------------------------------------------------------
run weaviate -p 127.0.0.1::8080 -p 127.0.0.1::50051 -e AUTHENTICATION_APIKEY_ENABLED=true -e AUTHENTICATION_APIKEY_ALLOWED_KEYS=other,smoke-key ragctl-test/weaviate-standin:1
wp="$(port weaviate 8080)"; gp="$(port weaviate 50051)"
wait_for 20 curl -fsS "http://127.0.0.1:$wp/v1/.well-known/ready" || fail "weaviate stand-in not ready"
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wp/v1/.well-known/live")" = 200 ]; then ok "weaviate-standin: ready/live 200"; else fail "weaviate-standin: ready/live 200"; fi
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wp/v1/meta")" = 401 ]; then ok "weaviate-standin: /v1/meta without key -> 401"; else fail "weaviate-standin: /v1/meta without key -> 401"; fi
if [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer bad' "http://127.0.0.1:$wp/v1/meta")" = 401 ]; then ok "weaviate-standin: /v1/meta wrong key -> 401"; else fail "weaviate-standin: /v1/meta wrong key -> 401"; fi
meta="$(curl -fsS -H 'Authorization: Bearer smoke-key' "http://127.0.0.1:$wp/v1/meta")"
if grep -q '"version": "1.27.0"' <<<"$meta"; then ok "weaviate-standin: /v1/meta with key -> $meta"; else fail "weaviate-standin: /v1/meta with key -> $meta"; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$gp"); then ok "weaviate-standin: gRPC placeholder accepts on 50051"; else fail "weaviate-standin: gRPC placeholder accepts on 50051"; fi

# --- app stand-in -----------------------------------------------------------------
run api -p 127.0.0.1::5001 -p 127.0.0.1::3000 -p 127.0.0.1::5002 -p 127.0.0.1::8194 ragctl-test/app-standin:1
run worker -e MODE=worker ragctl-test/app-standin:1
ap="$(port api 5001)"
wait_for 20 curl -fsS "http://127.0.0.1:$ap/health" || fail "app stand-in not up"
ok "app-standin: /health -> $(curl -fsS "http://127.0.0.1:$ap/health")"
for p in 3000 5002 8194; do
  hp="$(port api "$p")"
  if curl -fsS "http://127.0.0.1:$hp/health/check" >/dev/null; then ok "app-standin: answers on $p"; else fail "app-standin: answers on $p"; fi
done
if curl -fsS -X POST --data-binary 'hello' "http://127.0.0.1:$ap/v1/echo" | grep -q '"body_length": 5'; then ok "app-standin: echo"; else fail "app-standin: echo"; fi
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ap/status/503")" = 503 ]; then ok "app-standin: /status/503"; else fail "app-standin: /status/503"; fi
sleep 1
if [ "$(docker inspect -f '{{.State.Running}}' "$tag-worker")" = true ]; then ok "app-standin: MODE=worker stays up"; else fail "app-standin: MODE=worker stays up"; fi
if docker exec "$tag-worker" sh -c "tr '\\0' ' ' < /proc/1/cmdline | grep -q 'celery.* worker'"; then ok "app-standin: worker's PID 1 reads as celery worker"; else fail "app-standin: worker's PID 1 reads as celery worker"; fi
t=$(now); docker stop "$tag-worker" "$tag-api" "$tag-weaviate" >/dev/null; ok "stand-ins: docker stop (3) in $(since "$t") s"

# --- squid ---------------------------------------------------------------------------
squid_conf="$(mktemp -d)"
printf 'http_port 3128\nacl localnet src 0.0.0.0/0\nhttp_access allow localnet\nhttp_access deny all\n' >"$squid_conf/squid.conf"
chmod 0755 "$squid_conf"; chmod 0644 "$squid_conf/squid.conf"
if docker run --rm -v "$squid_conf/squid.conf:/etc/squid/squid.conf:ro" ragctl-test/squid:5 -k parse -f /etc/squid/squid.conf >/dev/null 2>&1; then ok "squid: -k parse"; else fail "squid: -k parse"; fi
run squid -p 127.0.0.1::3128 -v "$squid_conf/squid.conf:/etc/squid/squid.conf:ro" ragctl-test/squid:5
sp="$(port squid 3128)"
wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sp" || fail "squid not listening"
ok "squid: listening on 3128"
# A proxied request is logged; squid must still be running after it (a log it cannot write is fatal to squid).
# (docker's port proxy accepts before squid does: retry until squid answers.)
code=000
for _ in $(seq 100); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:$sp" http://127.0.0.1:9/ || true)"
  [ "$code" = 000 ] || break
  sleep 0.2
done
[ "$code" != 000 ] || fail "squid: no answer through the proxy"
sleep 1
[ "$(docker inspect -f '{{.State.Running}}' "$tag-squid")" = true ] || fail "squid: exited after a request ($(docker logs --tail 3 "$tag-squid" 2>&1))"
ok "squid: answers a proxied request (HTTP $code) and keeps running"
docker stop "$tag-squid" >/dev/null; rm -rf "$squid_conf"

# --- prometheus and exporters ----------------------------------------------------
# Debian's binaries are the entrypoints; the prometheus image also has promtool; each answers on its port.
for image in prometheus:2 postgres-exporter:0 redis-exporter:1 blackbox-exporter:0; do
  docker run --rm "ragctl-test/$image" --version >/dev/null 2>&1 || fail "$image: --version"
done
docker run --rm --entrypoint promtool ragctl-test/prometheus:2 --version >/dev/null 2>&1 || fail "prometheus: promtool"
ok "prometheus, exporters: Debian binaries as entrypoints, promtool present"
run prom ragctl-test/prometheus:2 --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus
wait_for 30 docker exec "$tag-prom" wget -q -O /dev/null http://127.0.0.1:9090/-/ready || fail "prometheus not ready"
ok "prometheus: ready on 9090 as $(docker exec "$tag-prom" id -un)"
docker stop "$tag-prom" >/dev/null

# --- monitoring stand-in ------------------------------------------------------------
run mon ragctl-test/monitoring-standin:1
wait_for 20 docker exec "$tag-mon" wget -q -O /dev/null http://127.0.0.1:3000/api/health || fail "grafana stand-in"
docker exec "$tag-mon" wget -q -O - http://127.0.0.1:8080/metrics | grep -q '^standin_info 1' || fail "cadvisor stand-in /metrics"
ok "monitoring stand-in: /api/health on 3000, /healthz and /metrics on 8080"
docker stop "$tag-mon" >/dev/null
# With the Docker API (read-only /var/run, as the cadvisor service mounts it): cAdvisor's memory series of its project.
run monapi --memory 64m --label "com.docker.compose.project=$tag" -v /var/run:/var/run:ro ragctl-test/monitoring-standin:1
wait_for 20 docker exec "$tag-monapi" wget -q -O /dev/null http://127.0.0.1:8080/healthz || fail "cadvisor stand-in"
metrics="$(docker exec "$tag-monapi" wget -q -O - http://127.0.0.1:8080/metrics)"
grep -q "^container_spec_memory_limit_bytes{.*name=\"$tag-monapi\"} 67108864$" <<<"$metrics" || fail "cadvisor stand-in: limit series: $metrics"
grep -q "^container_memory_working_set_bytes{.*name=\"$tag-monapi\"} [1-9]" <<<"$metrics" || fail "cadvisor stand-in: working set: $metrics"
ok "monitoring stand-in: cAdvisor memory series of its project from the Docker API"
docker stop "$tag-monapi" >/dev/null

echo "all image contract checks passed"
