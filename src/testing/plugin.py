"""pytest plugin entry point (``pytest11``): portside's fixtures and options."""

from __future__ import annotations
