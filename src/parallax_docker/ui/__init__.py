"""The web dashboard's files (HTML, CSS, JavaScript modules and vendored xterm.js).

No Python runs in the browser; this package only holds the files, which ``api/dashboard.py``
serves at ``/ui``. ``static/vendor/VENDORED.md`` says where the third-party files came from.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def static_root() -> Traversable:
    """The folder of the dashboard's files, wherever the package is installed."""
    return files(__name__) / "static"
