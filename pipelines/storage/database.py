"""The database every process of a deployment shares: SQLite under DATA_DIR by default,
PostgreSQL when `DATABASE_URL` is set, behind SQLAlchemy, with the schema kept by Alembic
migrations that run at start.

A database that stops answering makes every call raise `StoreUnavailable` (503
`store_unavailable`); the connection pool checks connections before use, so the service
recovers by itself when the database is back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, inspect, text

if TYPE_CHECKING:
    from docassist.pipelines.settings import Settings
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from docassist.pipelines.errors import StoreUnavailable
from docassist.pipelines.logs import event as log_event

_MIGRATION_LOCK = 7_301_402_311  # pg_advisory_lock key: one process migrates at a time


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class DatabaseHealth:
    ok: bool
    kind: str
    latency_ms: float | None = None
    revision: str | None = None
    error: str | None = None


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.kind = make_url(self.url).get_backend_name()
        self.shared = self.kind != "sqlite"
        self.revision: str | None = None
        if self.kind == "sqlite":
            # a file's connection does not go stale: no ping before each checkout
            self.engine: Engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                self.url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5}
            )

    @classmethod
    def for_data_dir(cls, database_url: str | None, data_dir: Path) -> Database:
        if database_url:
            return cls(database_url)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'docassist.sqlite3'}")

    @classmethod
    @contextlib.contextmanager
    def of_service(cls, settings: Settings) -> Iterator[Database]:
        """The database the service writes (DATABASE_URL, or DATA_DIR's SQLite), at the schema's
        head: what a command reads beside a running service (`audit export`, `eval feedback`)."""
        db = cls.for_data_dir(settings.database_url, settings.data_dir)
        try:
            db.migrate(settings.files_dir)
            yield db
        finally:
            db.close()

    @property
    def location(self) -> str:
        return redacted(self.url)

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        with self._unavailable_as_503(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def within(self, conn: Connection | None) -> Iterator[Connection]:
        """The caller's transaction when it gives one (several writes, one commit), else a new one."""
        if conn is not None:
            yield conn
            return
        with self.begin() as new:
            yield new

    @contextlib.contextmanager
    def _unavailable_as_503(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreUnavailable(
                f"the database ({self.kind}, {self.location}) is unavailable: {str(exc.orig).strip()}"
            ) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"the database ({self.kind}, {self.location}) dropped the connection") from exc
            raise

    def migrate(self, files_dir: Path | None = None) -> str:
        """Bring the schema to the newest revision. A database of the first release (tables, no
        version) is stamped as revision 0001 first. On PostgreSQL an advisory lock makes
        processes that start together migrate one after another."""
        config = Config()
        config.set_main_option("script_location", str(files("docassist.pipelines.storage") / "migrations"))
        config.attributes["files_dir"] = str(files_dir) if files_dir else None
        with self.begin() as conn:
            if self.kind == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            tables = set(inspect(conn).get_table_names())
            if "documents" in tables and "alembic_version" not in tables:
                command.stamp(config, "0001")
                log_event("[DATABASE] Stamped a first-release database as revision 0001", self.location)
            before = _revision(conn)
            command.upgrade(config, "head")
            self.revision = _revision(conn)
        if before != self.revision:
            log_event("[DATABASE] Migrated", f"{self.location}: {before or 'empty'} → {self.revision}")
        return self.revision or ""

    def health(self) -> DatabaseHealth:
        started = time.perf_counter()
        try:
            with self.begin() as conn:
                conn.execute(text("SELECT 1"))
        except StoreUnavailable as exc:
            return DatabaseHealth(False, self.kind, error=exc.message)
        latency = round((time.perf_counter() - started) * 1000, 1)
        return DatabaseHealth(True, self.kind, latency_ms=latency, revision=self.revision)

    def close(self) -> None:
        self.engine.dispose()


def _revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
