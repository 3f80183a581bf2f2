#!/usr/bin/env bash
# What the rate limiter costs over HTTP: `tasks-api serve --workers 2`, list endpoint, wrk with
# 8 connections, each request a random one of 200 users with that user's own token.
# RATE_LIMIT=off vs RATE_LIMIT=100000/s (never refuses: pure bookkeeping) per process, and the
# same shared through Redis; the three alternate ROUNDS times. Loopback only, bounded in time.
#   usage: docs/ratelimit-cost/run.sh   (from the repository root; needs wrk, psql, a local
#          PostgreSQL with trust auth (ADMIN_URL) and Redis on 127.0.0.1:6379)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ADMIN_URL=${ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS=${REDIS:-redis://127.0.0.1:6379/0}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WORK=$(mktemp -d)
DB=rlcost_$(openssl rand -hex 4)
export DATABASE_URL=${ADMIN_URL%/*}/$DB
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
export JWT_SECRET
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
trap 'psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
.venv/bin/tasks-api migrate >/dev/null 2>&1
psql -q "$DATABASE_URL" -c "INSERT INTO task (user_id, title) SELECT 'user' || u, 'task ' || t
  FROM generate_series(1, 200) u, generate_series(1, 100) t; ANALYZE task;"
export TOKENS_FILE=$WORK/tokens.txt
.venv/bin/python - <<'PY'
import os
from api.auth import mint_token
with open(os.environ["TOKENS_FILE"], "w") as out:
    for u in range(1, 201):
        out.write(f"user{u} {mint_token(os.environ['JWT_SECRET'], f'user{u}', ttl_seconds=7200)}\n")
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_config() {  # name, then the environment that differs
  local name=$1; shift
  env "$@" .venv/bin/tasks-api serve --port "$PORT" --workers 2 >"$WORK/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  sleep 2  # the second worker
  wrk -t2 -c8 -d3s -s "$HERE/tokens.lua" "http://127.0.0.1:$PORT" >/dev/null  # warm-up
  echo "$name $(wrk -t2 -c8 -d"${DURATION}s" -s "$HERE/tokens.lua" "http://127.0.0.1:$PORT" | grep RESULT)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
for _ in $(seq "$ROUNDS"); do
  run_config off RATE_LIMIT=off
  run_config local RATE_LIMIT=100000/s
  run_config redis RATE_LIMIT=100000/s REDIS_URL="$REDIS" RATE_LIMIT_REDIS_PREFIX=rlcost:
done
