"""Turning maps into pictures people look at: colour maps, overlays, grids, plots, encoded PNG/JPEG."""
