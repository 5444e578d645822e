"""The app as an import string, for uvicorn's worker processes (`server.workers` > 1).

Each worker process loads the configuration itself (from the same `$REPORTBOT_CONFIG` and environment
as the parent) and installs the same redacting log filter before it handles anything.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette

from bot.cli import build_app
from bot.config import load_config
from bot.logs import install


def app_factory() -> Starlette:
    """Build one worker's app."""
    install(logging.INFO)
    return build_app(load_config())
