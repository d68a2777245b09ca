"""The interactive Solara app: watch each incentive act, compare two contracts side by side.

``vbpsim app`` (or ``make app``) serves :func:`~vbpsim.app.page.Page` with Solara on
127.0.0.1. The page is Mesa's ``SolaraViz`` (step, play/pause, reset, speed) around a
per-session :class:`~vbpsim.app.session.AppModel`, with vbpsim's own controls (scenario or
preset, contract and its parameters with units and help, A/B mode) and views
(:mod:`vbpsim.app.views`). :mod:`vbpsim.app.settings` and :mod:`vbpsim.app.session` hold
the logic and need no browser; Solara is imported only by ``views`` and ``page``.
"""
