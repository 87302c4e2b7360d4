"""Analysts' verdicts on users and rings: an append-only store (SQLite or PostgreSQL) the
service writes and the next batch reads as labels."""
