"""Where Paddock keeps its state: SQLite by default (:mod:`paddock.store.sqlite`).

Every caller imports from here, never from a backend module, so the backend is chosen in
one place.
"""

from __future__ import annotations

from paddock.store.sqlite import DEFAULT_PATH, Store

__all__ = ["DEFAULT_PATH", "Store"]
