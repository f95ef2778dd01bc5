"""The version hh_api and Paddock ship as, and the User-Agent every request carries.

One source of truth: the installed distribution's metadata when Paddock is installed,
otherwise the ``pyproject.toml`` it is run from (the checkout, or the Docker image,
which copies it). Providers' support teams ask for a named User-Agent; every SDK sends
its own (``hiapi-python/0.2.1``, WaveSpeed's ``X-Client-Name``), so hh_api sends one too.
"""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "paddock"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def paddock_version() -> str:
    """Paddock's version, from its metadata or its pyproject.toml; "unknown" if neither."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        with PYPROJECT.open("rb") as file:
            project = tomllib.load(file).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    if project.get("name") != DISTRIBUTION:
        return "unknown"
    return str(project.get("version") or "unknown")


# hh_api ships inside the Paddock distribution, so both carry its version.
__version__ = paddock_version()
USER_AGENT = f"hh_api/{__version__} paddock/{__version__} Python/{platform.python_version()}"
