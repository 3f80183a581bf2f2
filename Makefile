# Conveniences over dev.py (which needs only Python 3.11+; `make` is optional).
.PHONY: run test test-pg15 lint bench bench-smoke bench-instructions fuzz audit openapi

run:            ## set up .venv and serve on an embedded PostgreSQL
	python3 dev.py run

test:           ## set up .venv and run the whole suite (embedded PostgreSQL 18)
	python3 dev.py test

test-pg15:      ## the whole suite against the PostgreSQL 15 service on 127.0.0.1:5432
	TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python3 dev.py test

lint:
	.venv/bin/ruff check .

bench:          ## the benchmark harness (fresh database, pgbench floor, wrk load)
	.venv/bin/python bench/run.py

bench-smoke:
	.venv/bin/python bench/run.py --smoke

bench-instructions:  ## instructions per request under callgrind: A=$(A) (a checkout) against this one
	.venv/bin/python bench/instructions.py --a-source $(A)

fuzz:           ## a longer schemathesis run; prints the seed and counts
	.venv/bin/python scripts/fuzz.py

audit:          ## the DBA report for DATABASE_URL (or the embedded database)
	.venv/bin/tasks-api audit

openapi:        ## regenerate the committed OpenAPI document
	.venv/bin/tasks-api openapi > openapi.json
