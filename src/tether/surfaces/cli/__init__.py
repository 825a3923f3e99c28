"""The ``tether`` command line."""

from tether.surfaces.cli.app import app, main

__all__ = ["app", "main"]
