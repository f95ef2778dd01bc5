"""Paddock's Discord-free domain code: the SQLite store, the credit ledger and the job store.

Nothing in this package imports ``discord``; the bot's cogs turn interactions into calls of
these modules and their results (or their user-safe errors) into messages.
"""

from __future__ import annotations
