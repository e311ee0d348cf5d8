"""``logsvc console``: a web console for a broker — topics, messages, group lag over time and
dead letters in the browser, with the few actions that change state behind a console token.

Why Starlette: the console is a handful of server-rendered pages plus long-lived parts — pages
polling their live tables, and a sampler task that records lag and produce rates in the
background for the charts. An ASGI framework runs that task on the same event loop as the
requests, with no extra thread or process to manage, and Starlette is the small, typed core of
that world (routing, Jinja2 templates, static files, form parsing) without an ORM or a
validation layer we would not use. Blocking client calls run in its thread pool
(``run_in_threadpool``), so the loop never waits on gRPC. Pages are Jinja2 with autoescape;
htmx (polling) and uPlot (charts) are vendored built files under ``static/vendor``, so
installing needs no Node.

The modules, each owning one thing:

- ``config.py``: the settings and their defaults, validated once.
- ``app.py``: the ASGI app, its error pages and security headers, and :func:`~.app.serve`.
- ``pages.py``: what every view shares (the console's state, rendering, checked forms).
- ``views/``: one module per page (overview, topics, messages, groups, dead_letters, session).
- ``broker.py``: every read and action against the broker, through the public client API.
- ``sampler.py``: lag and rates over time, in memory (pure, clock-injected).
- ``rendering.py``: a record's bytes as JSON, text, msgpack or hex.
- ``auth.py``: console tokens, sessions and the CSRF and Origin checks.
- ``connectors.py``: which groups are connectors, and their metrics.

Needs the ``console`` extra: ``pip install 'logsvc[console]'``.
"""
