"""The ``tether`` command line."""

from tether.surfaces.cli import (
    cost,  # noqa: F401 - importing it registers `tether cost` on app
    guard,  # noqa: F401 - registers `tether guard`
)
from tether.surfaces.cli.app import app, main

__all__ = ["app", "main"]
