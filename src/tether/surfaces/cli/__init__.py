"""The ``tether`` command line."""

from tether.surfaces.cli import (
    audit,  # noqa: F401 - registers `tether audit`
    cost,  # noqa: F401 - importing it registers `tether cost` on app
    evals,  # noqa: F401 - registers `tether eval`
    guard,  # noqa: F401 - registers `tether guard`
    redteam,  # noqa: F401 - registers `tether redteam`
    serve,  # noqa: F401 - registers `tether serve`, `tether keys`, `tether health`
    tools,  # noqa: F401 - registers `tether tools test`
    versions,  # noqa: F401 - registers `tether deploy`, `promote`, `rollback`, `versions`
)
from tether.surfaces.cli.app import app, main

__all__ = ["app", "main"]
