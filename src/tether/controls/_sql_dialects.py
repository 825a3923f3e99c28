"""The SQL guard's per-dialect knowledge: functions it refuses, statements it cannot review.

Functions a model's ``SELECT`` may not call, by engine, in five kinds:

- **runs SQL given as text** (``query_to_xml('SELECT * FROM users', ...)``,
  ``table_to_xml('users', ...)``, ``ts_stat``, SQLite's ``eval``): the text
  is SQL the guard never parsed, so the table allowlist and every other rule
  are bypassed. Refused outright.
- **reaches outside the database** (``dblink*``, ``pg_read_file``,
  ``pg_ls_dir``, ``lo_import``, SQLite's ``load_extension``, ``readfile``,
  ``fsdir``, MySQL's ``load_file``): files, programs or other servers; and
  ``dblink_exec`` commits on its own connection, out of the caller's
  transaction. Refused outright.
- **changes settings or server state** (``set_config``, ``pg_reload_conf``,
  ``pg_terminate_backend``, replication slots, ``pg_notify``,
  ``pg_stat_reset*``, SQLite's ``fts3_tokenizer``): effects hidden inside a
  read and not undone by a rollback. Refused outright: where the change is
  meant, ``SET`` says so as a statement the guard can see.
- **waits or locks** (``pg_sleep*``, ``pg_advisory*``, MySQL's ``sleep``,
  ``benchmark``, ``get_lock``): they stall this session or others. Refused
  outright.
- **writes** (``nextval``/``setval`` move a sequence, and a rollback does not
  move it back; ``lo_*`` create or change large objects; ``txid_current`` and
  ``pg_current_xact_id`` assign a transaction id): treated like any write,
  blocked on a read-only connection and needing approval otherwise, so that
  ``INSERT ... VALUES (nextval('s'))`` still works where writes are allowed.

Allowed on purpose: ``current_setting`` (it reads a setting, as ``SHOW``
does), ``currval``/``lastval``, ``txid_current_if_assigned``,
``pg_current_xact_id_if_assigned`` and the snapshot functions (reads of this
session's state), ``random`` (no state a rollback leaves behind), the
``pg_stat_*`` readers and ``pg_get_*def`` (catalog reads; the table allowlist
does not cover them: give the connection the privileges it needs, no more).

A name ending in ``*`` is a prefix. Every list applies whatever the
policy's dialect, because SQL written for one engine is often sent to
another and none of these names belongs in a reviewed read anywhere; the
dialect a name is listed under is the engine the reason names. Names are
matched case-insensitively, bare, schema-qualified (``pg_catalog.set_config``)
or quoted (``"set_config"``, PostgreSQL's ``U&"\\0073et_config"``).

Statements sqlglot only keeps as an opaque command (``VACUUM``, ``DO``,
``CALL``...) or misreads as an expression (``LISTEN foo`` as a column alias)
are refused whatever the policy; :data:`STATEMENT_WHY` says why for the
common ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["STATEMENT_WHY", "FunctionRisk", "Refusal", "denied_function", "listed_names"]


class FunctionRisk(StrEnum):
    """What a refused function does, as said in the reason."""

    RUNS_SQL = "runs SQL given as text, which the guard never reviews"
    OUTSIDE = "reaches outside the database"
    SERVER = "changes settings or server state"
    WAITS = "waits or takes locks"
    WRITES = "writes"


_R, _O, _S, _W, _X = (
    FunctionRisk.RUNS_SQL,
    FunctionRisk.OUTSIDE,
    FunctionRisk.SERVER,
    FunctionRisk.WAITS,
    FunctionRisk.WRITES,
)

#: engine -> {name or prefix*: risk}; names lower-case; "schema.name" only matches qualified
_DENIED: dict[str, dict[str, FunctionRisk]] = {
    "postgres": {
        # SQL from text: the XML and text-search functions run the query they are given
        "query_to_xml*": _R,
        "table_to_xml*": _R,
        "cursor_to_xml*": _R,
        "schema_to_xml*": _R,
        "database_to_xml*": _R,
        "ts_stat": _R,
        "ts_rewrite": _R,
        "pg_background_*": _R,
        "cron.schedule*": _R,
        "cron.alter_job": _R,
        # extensions that run a query given as text, or read a table named in a string
        "crosstab*": _R,
        "connectby": _R,
        "xpath_table": _R,
        "get_raw_page": _R,
        "heap_page_items": _R,
        # outside: other servers, the server's files (and its configuration files)
        "dblink*": _O,
        "pg_read_file*": _O,
        "pg_read_binary_file": _O,
        "pg_hba_file_rules": _O,
        "pg_ident_file_mappings": _O,
        "pg_show_all_file_settings": _O,
        "pg_export_snapshot": _O,
        "pg_ls_*": _O,
        "pg_stat_file": _O,
        "pg_file_*": _O,
        "pg_logdir_ls": _O,
        "pg_current_logfile": _O,
        "lo_import": _O,
        "lo_export": _O,
        "postgres_fdw_*": _O,
        # settings and server state
        "set_config": _S,
        "setseed": _S,
        "pg_reload_conf": _S,
        "pg_rotate_logfile*": _S,
        "pg_terminate_backend": _S,
        "pg_cancel_backend": _S,
        "pg_promote": _S,
        "pg_switch_wal": _S,
        "pg_switch_xlog": _S,
        "pg_create_*": _S,
        "pg_drop_replication_slot": _S,
        "pg_copy_*": _S,
        "pg_replication_slot_advance": _S,
        "pg_sync_replication_slots": _S,
        "pg_logical_*": _S,
        "pg_replication_origin_*": _S,
        "pg_wal_replay_*": _S,
        "pg_backup_*": _S,
        "pg_start_backup": _S,
        "pg_stop_backup": _S,
        "pg_stat_reset*": _S,
        "pg_stat_statements_reset": _S,
        "pg_stat_force_next_flush": _S,
        "pg_log_backend_memory_contexts": _S,
        "pg_log_standby_snapshot": _S,
        "pg_import_system_collations": _S,
        "pg_extension_config_dump": _S,
        "pg_notify": _S,
        "pg_prewarm": _S,
        "pg_nextoid": _S,
        "binary_upgrade_*": _S,
        "brin_summarize_*": _S,
        "brin_desummarize_range": _S,
        "gin_clean_pending_list": _S,
        # waits and locks
        "pg_sleep*": _W,
        "pg_advisory_*": _W,
        "pg_try_advisory_*": _W,
        # writes hidden in a read
        "nextval": _X,
        "setval": _X,
        "lo_*": _X,
        "lowrite": _X,
        "txid_current": _X,
        "pg_current_xact_id": _X,
    },
    "sqlite": {
        "eval": _R,
        "define": _R,
        "load_extension": _O,
        "readfile": _O,
        "writefile": _O,
        "edit": _O,
        "fsdir": _O,
        "zipfile": _O,
        "zipfile_cds": _O,
        "fts3_tokenizer": _S,
        "icu_load_collation": _S,
        "sqlite_rename_*": _S,
        "sqlite_drop_column": _S,
    },
    "mysql": {
        "sys_eval": _R,
        "sys_exec": _O,
        "load_file": _O,
        "sleep": _W,
        "benchmark": _W,
        "get_lock": _W,
        "release_lock": _W,
        "release_all_locks": _W,
        "master_pos_wait": _W,
        "source_pos_wait": _W,
        "wait_for_executed_gtid_set": _W,
        "wait_until_sql_thread_after_gtids": _W,
        "nextval": _X,
        "setval": _X,
    },
    "tsql": {
        "sp_executesql": _R,
        "openquery": _R,
        "openrowset": _O,
        "opendatasource": _O,
        "xp_*": _O,
    },
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a function is refused: what it does, the engine it is listed for, the name read."""

    risk: FunctionRisk
    engine: str
    name: str = ""


def _index() -> tuple[dict[str, Refusal], tuple[tuple[str, Refusal], ...]]:
    exact: dict[str, Refusal] = {}
    prefixes: list[tuple[str, Refusal]] = []
    for engine, names in _DENIED.items():
        for name, risk in names.items():
            if name.endswith("*"):
                prefixes.append((name[:-1], Refusal(risk, engine)))
            else:
                exact.setdefault(name, Refusal(risk, engine))
    # longest prefix first: "pg_sleep*" before a shorter one that also matches
    return exact, tuple(sorted(prefixes, key=lambda p: -len(p[0])))


_EXACT, _PREFIXES = _index()

#: PostgreSQL's escapes in U&"..." identifiers: \XXXX, \+XXXXXX, and \\ for a backslash
_UNICODE_ESCAPE = re.compile(r"\\(?:\+([0-9A-Fa-f]{6})|([0-9A-Fa-f]{4})|(\\))")


def _unescape(name: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(3):
            return "\\"
        code = int(m.group(1) or m.group(2), 16)
        return chr(code) if code <= 0x10FFFF else m.group()

    return _UNICODE_ESCAPE.sub(one, name) if "\\" in name else name


def denied_function(
    name: str, schema: str | None = None, dialect: str | None = None
) -> Refusal | None:
    """The refusal for calling ``name`` (in ``schema``, when qualified), or ``None``.

    The ``dialect``'s own list is consulted first, so the reason names that
    engine when a name is listed for several; every list applies.
    """
    bare = _unescape(name).strip().lower()
    candidates = [bare]
    if schema:
        candidates.insert(0, f"{_unescape(schema).strip().lower()}.{bare}")
    own = _DENIED.get(dialect or "", {})
    for candidate in candidates:
        if candidate in own:
            return Refusal(own[candidate], dialect or "", bare)
        if candidate in _EXACT:
            return replace(_EXACT[candidate], name=bare)
    for candidate in candidates:
        for prefix, refusal in _PREFIXES:
            if candidate.startswith(prefix):
                return replace(refusal, name=bare)
    return None


def listed_names() -> dict[str, dict[str, FunctionRisk]]:
    """Every list, by engine (for tests and documentation)."""
    return {engine: dict(names) for engine, names in _DENIED.items()}


#: a statement's first word -> what it does, for statements refused as unreviewable
STATEMENT_WHY: dict[str, str] = {
    "VACUUM": "rewrites tables (SQLite's VACUUM INTO writes a file)",
    "REINDEX": "rebuilds indexes",
    "CLUSTER": "rewrites a table",
    "REFRESH": "rewrites a materialized view",
    "LOCK": "takes table locks",
    "UNLOCK": "releases table locks",
    "LISTEN": "subscribes this session to notifications",
    "UNLISTEN": "changes this session's subscriptions",
    "NOTIFY": "sends a notification to other sessions",
    "CALL": "runs a procedure the guard cannot see",
    "DO": "runs code the guard cannot see",
    "PREPARE": "stores SQL to run later, out of the guard's sight",
    "EXECUTE": "runs stored SQL the guard cannot see",
    "DEALLOCATE": "changes this session's prepared statements",
    "EXPLAIN": "may run the statement (EXPLAIN ANALYZE)",
    "SHOW": "is not reviewed (ask with SELECT current_setting(...))",
    "SET": "changes a setting",
    "RESET": "changes settings",
    "DISCARD": "resets session state",
    "DECLARE": "opens a cursor",
    "FETCH": "reads through a cursor the guard cannot see",
    "MOVE": "moves a cursor",
    "CLOSE": "closes a cursor",
    "LOAD": "loads a library or a file",
    "CHECKPOINT": "forces a checkpoint",
    "SAVEPOINT": "is transaction control, which belongs to the caller",
    "RELEASE": "is transaction control, which belongs to the caller",
    "ABORT": "is transaction control, which belongs to the caller",
    "START": "is transaction control, which belongs to the caller",
    "CREATE": "creates an object",
    "ALTER": "changes an object",
    "DROP": "drops objects",
    "GRANT": "changes privileges",
    "REVOKE": "changes privileges",
    "REASSIGN": "changes owners",
    "SECURITY": "changes a security label",
    "IMPORT": "imports foreign tables",
    "REPLACE": "writes rows",
    "RENAME": "renames tables",
    "OPTIMIZE": "rewrites tables",
    "REPAIR": "rewrites tables",
    "FLUSH": "changes server state",
    "PURGE": "deletes server logs",
    "INSTALL": "installs server code",
    "UNINSTALL": "removes server code",
    "SHUTDOWN": "stops the server",
    "HANDLER": "reads through a handler the guard cannot see",
    "XA": "is transaction control, which belongs to the caller",
}
