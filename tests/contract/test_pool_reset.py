"""A connection handed back to the pool inside a transaction is rolled back, on every backend."""

from __future__ import annotations

from agentkeep import DatabaseManager, Sync

STRAY_INSERT = (
    "INSERT INTO personas (id, name, template, is_active, created_at, updated_at) VALUES "
    "('00000000000000000000000000000001', 'stray', 't', true, CURRENT_TIMESTAMP, "
    "CURRENT_TIMESTAMP)"
)


class TestStrayTransactions:
    def test_a_connection_returned_mid_transaction_is_rolled_back(
        self, db: DatabaseManager[Sync]
    ) -> None:
        raw = db.service.engine.raw_connection()  # what code using the engine directly gets
        cursor = raw.cursor()
        if db.service.dialect == "sqlite":
            cursor.execute("BEGIN")  # agentkeep's SQLite connections leave BEGIN to the caller
        cursor.execute(STRAY_INSERT)
        cursor.close()
        raw.close()  # back to the pool with the transaction still open
        assert db.personas.find_by_name("stray") is None
        assert db.personas.count() == 0
