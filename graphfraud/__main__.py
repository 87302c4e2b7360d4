"""`python -m graphfraud` = the `graphfraud` command."""

from __future__ import annotations

from graphfraud.cli import main

main()
