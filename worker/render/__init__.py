"""Turning maps into pictures people look at: colour maps, overlays, encoded PNG/JPEG."""
