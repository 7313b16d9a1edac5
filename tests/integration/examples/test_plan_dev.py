"""E1: ``portside dev --once --job NAME`` dispatches any example job with its sample payload
and shows it completed (here on the harness's servers rather than embedded ones)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("job", ["color-extraction", "phase1-task", "moderation-review"])
async def test_e1_dev_once_dispatches_an_example_job(
    job: str, redis_url: str, redis_prefix: str, postgres_dsn: str
) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PORTSIDE_")},
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PYTHONUNBUFFERED": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portside.app.cli", "dev", "--once", "--job", job,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    text = out.decode()
    assert process.returncode == 0, (text, err.decode()[-3000:])
    result = json.loads(text[text.index("{\n") :])
    assert result["state"] == "completed", result
    assert result["name"] == job
