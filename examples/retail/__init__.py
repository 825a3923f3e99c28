"""A customer-support agent for a retail shop (the tau2-bench retail domain).

- :mod:`examples.retail.shop`: the shop in SQLite, importable from and
  exportable to the benchmark's ``db.json`` shape.
- :mod:`examples.retail.tools` and :mod:`examples.retail.actions`: the tools,
  which enforce authentication and the support policy themselves.
- :mod:`examples.retail.agent`: the agent (``examples.retail.agent:agent``).
- :mod:`examples.retail.generate`: a small deterministic shop and help center.

Run ``python -m examples.retail --help`` for the command line.
"""
