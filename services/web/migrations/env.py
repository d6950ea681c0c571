"""Alembic's environment: migrations run online, against Postgres directly (never through
PgBouncer: the lock below is a session's, which a transaction pooler would not keep), in one
transaction, under an advisory lock, so two runs started together apply each migration once:
the second waits for the first, then finds nothing left to do."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import URL, create_engine, text

from stack import database
from stack.settings import settings_from_env

# Any number, the same in every run: the key of the advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 4_711_2026


# alembic.ini's logging: each migration applied is logged ("Running upgrade ... -> 0001").
if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def database_url(settings):
    arguments = database.connection_arguments(settings)
    return URL.create(
        "postgresql+psycopg",
        username=arguments["user"],
        password=arguments["password"],
        host=arguments["host"],
        port=arguments["port"],
        database=arguments["dbname"],
    )


def run_migrations_online():
    settings = settings_from_env()
    if not database.configured(settings):
        raise SystemExit("migrate: APP_DB_HOST is not set: there is no database to migrate")
    engine = create_engine(database_url(settings), connect_args={"connect_timeout": 10})
    with engine.connect() as connection:
        # Postgres runs DDL in transactions: every pending migration and the version table's
        # update commit together, or not at all.
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            # Held until this transaction ends; taken before Alembic reads the current
            # version, so a run that waited sees what the other applied.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("migrate: offline (--sql) mode is not set up; run migrations against the database")
run_migrations_online()
