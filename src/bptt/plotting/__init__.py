"""Drawing, below everything that draws: log axes that show a vanished series, one palette per
remedy family, and self-contained HTML pages with inline SVG figures.

``diagnostics``, ``report``, ``demo`` and ``watcher`` use it; it imports nothing of bptt's.
Figures are ``matplotlib.figure.Figure`` objects built without pyplot.
"""
