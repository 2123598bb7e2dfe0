"""The live dashboard: ``bayes-mem dashboard`` serves the store and the model registry as a local
web app (Bokeh server; BokehJS is served by the app itself, nothing is fetched from a network).

Two layers, kept apart:

- :mod:`bayes_mem.dashboard.data`: read-only queries returning pandas frames (pure, testable
  without a browser). Every connection it opens is read-only: SQLite through a ``mode=ro`` URI,
  PostgreSQL with ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``.
- :mod:`bayes_mem.dashboard.pages`: one Bokeh document per page (risk, correlation, signals,
  decisions, nightly job, regime), refreshed by a periodic callback when the store's cheap
  fingerprint (:func:`bayes_mem.dashboard.data.data_version`) changes.
- :mod:`bayes_mem.dashboard.server`: the options' checks, the token check and the server.

The live path (:mod:`bayes_mem.live`) never imports this package.
"""
