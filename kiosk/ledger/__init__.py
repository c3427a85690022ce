"""The ledger: the bank's own SQLite file, its migrations, audit chain and outbox."""
