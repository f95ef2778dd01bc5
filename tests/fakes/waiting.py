"""How long the fakes' ``wait_for...`` helpers wait before giving up.

A guard against a hang, not a timing check: a test waits for the state it asserts, and
that state may be slow to come on a loaded machine (two suites side by side on two
cores), so the guard is generous. pytest-timeout stops a test that hangs past it.
"""

from __future__ import annotations

WAIT_LIMIT = 30.0  # seconds
