"""What users touch: the CLI, agent loading, logging set-up."""

from tether.surfaces.loader import load_agent

__all__ = ["load_agent"]
