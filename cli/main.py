"""The `tasks-api` command line: serve, migrate, token, audit, prove."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence

from pydantic import ValidationError

from api.settings import ConfigError, Settings, get_settings

log = logging.getLogger("tasks_api")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"tasks-api: invalid configuration: {messages}") from None


def _prepare_local(settings: Settings) -> Settings:
    """No DATABASE_URL: start the embedded server, migrate it, and make sure a secret exists.

    The resolved values go into this process's environment so `--workers` children inherit them.
    """
    from cli.local_secret import local_secret
    from db.embedded import start_embedded
    from db.migrate import upgrade_to_head

    url = start_embedded(settings.data_dir)
    upgrade_to_head(url)
    os.environ["DATABASE_URL"] = url
    if settings.jwt_secret is None and settings.hmac_algorithms:
        os.environ["JWT_SECRET"] = local_secret(settings.data_dir)
    get_settings.cache_clear()
    return get_settings()


def owner_url(settings: Settings) -> str:
    """The URL of the role that owns the schema: MIGRATION_DATABASE_URL (on Neon the direct,
    non-pooled URL), else DATABASE_URL, else the embedded database (started on demand)."""
    url = settings.migration_database_url or settings.database_url
    if url is None:
        from db.embedded import start_embedded

        url = start_embedded(settings.data_dir)
    return url


def resolve_workers(flag: int | None, environ: Mapping[str, str]) -> int:
    """--workers wins; else WEB_CONCURRENCY (the convention of PaaS hosts); else one process."""
    if flag is not None:
        return flag
    return int(environ.get("WEB_CONCURRENCY") or 1)


def _wait_for_database(settings: Settings) -> bool:
    """A database restarting as we start (a deploy, a failover) is waited for, within a budget."""
    import psycopg

    from db.engine import wait_for_database

    try:
        wait_for_database(
            settings.database_url or "",
            settings.db_startup_wait_seconds,
            settings.db_connect_timeout_seconds,
        )
    except psycopg.OperationalError as exc:
        print(
            f"tasks-api: the database did not accept a connection within "
            f"DB_STARTUP_WAIT_SECONDS={settings.db_startup_wait_seconds:g}: {exc}",
            file=sys.stderr,
        )
        return False
    return True


def _exit_after_shutdown(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> int:
    # Settings first: a refused configuration is one line, before Alembic's import-time logging.
    settings = _settings()

    import uvicorn

    from db.migrate import is_at_head

    # Judged on the operator's own settings: the embedded default is not a deployment.
    scope_warning = settings.token_scope_warning()
    if settings.local_mode:
        settings = _prepare_local(settings)
    elif not _wait_for_database(settings):
        return 2
    elif not is_at_head(settings.database_url or ""):
        print(
            "tasks-api: the database is not migrated to the current schema; "
            "run `tasks-api migrate` first.",
            file=sys.stderr,
        )
        return 2
    if not _passes_self_audit(settings.database_url or ""):
        return 2
    if not _replicas_pass_self_audit(settings):
        return 2
    try:
        settings.require_verification_keys()
    except ConfigError as exc:
        print(f"tasks-api: {exc}", file=sys.stderr)
        return 2
    if scope_warning is not None:
        log.warning("%s", scope_warning)
    if settings.consistency_token_secret is None and settings.jwt_secret is None:
        # A JWKS-only issuer leaves no shared secret to derive the Consistency-Token key from:
        # one key for this serve, inherited by every worker, so each accepts the others' tokens.
        os.environ["CONSISTENCY_TOKEN_SECRET"] = secrets.token_urlsafe(48)
        get_settings.cache_clear()
    workers = resolve_workers(args.workers, os.environ)
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics to files here, so any worker answers /metrics with the
        # sum over all of them (prometheus_client's multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="tasks-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if settings.metrics_enabled and settings.metrics_port is not None:
        # Imported only now: prometheus_client picks multiprocess mode when metrics are created.
        from api.observability.metrics import serve_metrics

        try:
            serve_metrics(settings.metrics_bind, settings.metrics_port)
        except OSError as exc:
            print(
                f"tasks-api: cannot serve metrics on "
                f"{settings.metrics_bind}:{settings.metrics_port}: {exc}",
                file=sys.stderr,
            )
            return 2
    # uvicorn finishes in-flight requests on SIGTERM and then re-raises the signal with the
    # handler it found. With the default handler the process would die on the spot, skipping
    # the cleanup below and the embedded PostgreSQL's stop at exit; this one exits normally.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    try:
        # uvicorn (uvloop, httptools) measured against granian behind the same app: granian cost
        # as much or more CPU per request (docs/performance.md), so serve stays on uvicorn.
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            # The app writes its own access log (api/observability/access_log.py): uvicorn's
            # would print query strings, where a careless client may have put a token.
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _passes_self_audit(url: str) -> bool:
    """Refuse to serve, one line per problem, when the database could not enforce isolation."""
    import psycopg

    from db.audit.startup import self_audit

    try:
        verdict = self_audit(url)
    except psycopg.Error as exc:
        print(f"tasks-api: the startup self-audit could not run: {exc}".strip(), file=sys.stderr)
        return False
    for line in verdict.warnings:
        log.warning("self-audit: %s", line)
    for line in verdict.refusals:
        print(f"tasks-api: refusing to start: {line}", file=sys.stderr)
    if verdict.refusals:
        print(
            "tasks-api: run `tasks-api audit` for the SQL that fixes each problem.",
            file=sys.stderr,
        )
    return not verdict.refusals


def _replicas_pass_self_audit(settings: Settings) -> bool:
    """The same refusal for each read replica, named; a replica down now only starts out of
    rotation (the service reads from the primary until it answers)."""
    import psycopg

    from db.audit.startup import replica_self_audit

    try:
        verdicts = replica_self_audit(
            settings.read_replica_urls, settings.db_connect_timeout_seconds
        )
    except psycopg.Error as exc:
        print(f"tasks-api: the replica self-audit could not run: {exc}".strip(), file=sys.stderr)
        return False
    refused = False
    for replica in verdicts:
        name = f"{replica.label} ({replica.host})"
        if replica.verdict is None:
            log.warning(
                "%s is not reachable, starting out of rotation: %s", name, replica.unreachable
            )
            continue
        for line in replica.verdict.warnings:
            log.warning("self-audit of %s: %s", name, line)
        for line in replica.verdict.refusals:
            print(f"tasks-api: refusing to start: {name}: {line}", file=sys.stderr)
            refused = True
    if refused:
        print(
            "tasks-api: `tasks-api audit --database-url <replica URL>` lists each finding; "
            "fix it on the replica's primary (a standby replays its primary's catalog).",
            file=sys.stderr,
        )
    return not refused


def cmd_audit(args: argparse.Namespace) -> int:
    import psycopg

    from db.audit.report import render_json, render_table
    from db.audit.runner import audit_database
    from db.errors import first_line

    url = args.database_url or owner_url(_settings())
    try:
        report = audit_database(url)
    except psycopg.Error as exc:
        message = first_line(exc)
        print(f"tasks-api: cannot audit the database: {message}", file=sys.stderr)
        return 2
    print(render_json(report) if args.json else render_table(report))
    if report.errors:
        return 2
    return 1 if report.findings else 0


def cmd_prove(args: argparse.Namespace) -> int:
    """The live access matrix; exit 0 all as declared, 1 any cell not, 2 could not run."""
    import psycopg

    from db.errors import first_line
    from db.prove import ProofUnavailable, prove_database
    from db.prove.report import render_json, render_table

    url = args.database_url or owner_url(_settings())
    try:
        proof = prove_database(url)
    except (psycopg.Error, ProofUnavailable) as exc:
        message = first_line(exc)
        print(f"tasks-api: cannot prove the database: {message}", file=sys.stderr)
        return 2
    print(render_json(proof) if args.json else render_table(proof))
    return 1 if proof.violations else 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from db.migrate import upgrade_to_head

    url = owner_url(_settings())
    upgrade_to_head(url)
    print("tasks-api: database migrated to head")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth.tokens import mint_token
    from cli.local_secret import local_secret

    settings = _settings()
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    elif settings.local_mode:
        secret = local_secret(settings.data_dir)
    else:
        print("tasks-api: set JWT_SECRET to mint tokens for this deployment.", file=sys.stderr)
        return 2
    claims = {}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    print(mint_token(secret, args.user_id, ttl_seconds=args.ttl, **claims))
    return 0


def cmd_openapi(_: argparse.Namespace) -> int:
    from api.app import published_document
    from api.http.openapi import dumps

    sys.stdout.write(dumps(published_document()))
    return 0


def _database_report(
    parser: argparse.ArgumentParser, command: Callable[[argparse.Namespace], int], json_shape: str
) -> None:
    """The DBA commands share their shape: a report on one database, as a table or as JSON."""
    parser.add_argument("--json", action="store_true", help=f"print {json_shape}")
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help=f"database to {parser.prog.split()[-1]} (default: MIGRATION_DATABASE_URL, else "
        "DATABASE_URL, else the embedded database)",
    )
    parser.set_defaults(func=command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasks-api",
        description="A tasks REST API whose per-user isolation is enforced by PostgreSQL RLS.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the HTTP service",
        description="Serve the API. Without DATABASE_URL an embedded PostgreSQL is started under "
        "TASKS_DATA_DIR and migrated; with it, run `tasks-api migrate` first.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: WEB_CONCURRENCY, else 1)",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser(
        "migrate",
        help="upgrade the database schema to head",
        description="Run Alembic migrations to head using MIGRATION_DATABASE_URL, else "
        "DATABASE_URL (else the embedded database). On Neon use the direct, non-pooled URL.",
    )
    migrate.set_defaults(func=cmd_migrate)

    _database_report(
        sub.add_parser(
            "audit",
            help="report what the live database enforces (the DBA audit)",
            description="Read the live catalog and report every way tenant isolation could "
            "fail: RLS off or not forced, missing or permissive policies, a runtime role that is "
            "a superuser, has BYPASSRLS, owns or inherits too much, excess grants, SECURITY "
            "DEFINER functions, views without security_invoker, and drift from policies/. Exit "
            "0 when clean, 1 on any finding, 2 when the audit could not run. Connect as the "
            "migrator (owner) role; on Neon use the direct, non-pooled URL.",
        ),
        cmd_audit,
        '{"findings": [...]} instead of a table',
    )
    _database_report(
        sub.add_parser(
            "prove",
            help="prove isolation live: the access matrix (the DBA proof)",
            description="In one transaction that is always rolled back, create rows for two "
            "synthetic users in every tenant table and try select, insert, update (also of "
            "the owner) and delete as tasks_app: as the owner, the other user, no identity and "
            "an empty one. Prints expected and actual access per cell. Exit 0 when every cell is "
            "as policies/ declares, 1 when any is not, 2 when it could not run. Connect as the "
            "migrator (owner) role; a transaction-mode pooler works.",
        ),
        cmd_prove,
        '{"cells": [...], "violations": [...]}',
    )

    token = sub.add_parser(
        "token",
        help="mint a development token",
        description="Print an HS256 JWT for USER_ID signed with JWT_SECRET (or, in local mode, "
        "the generated secret in TASKS_DATA_DIR).",
    )
    token.add_argument("user_id", metavar="USER_ID", help="the user the token identifies")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=cmd_token)

    openapi = sub.add_parser(
        "openapi",
        help="print the OpenAPI document",
        description="Print the OpenAPI 3.1 document the service publishes at /openapi.json "
        "(the committed openapi.json is this output). Needs no database or secret.",
    )
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
