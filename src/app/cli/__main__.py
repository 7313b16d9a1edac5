"""``python -m portside.app.cli``: the same as the ``portside`` command."""

from __future__ import annotations

from portside.app.cli import main

main()
