"""The ``containers`` provider: Redis and Postgres in Testcontainers, when Docker is reachable."""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portside.testing.providers import ProviderName, ProviderUnavailable

__all__ = ["POSTGRES_IMAGE_ENV", "REDIS_IMAGE_ENV", "ContainersProvider", "docker_host"]

REDIS_IMAGE_ENV = "PORTSIDE_REDIS_IMAGE"
POSTGRES_IMAGE_ENV = "PORTSIDE_POSTGRES_IMAGE"
_REDIS_IMAGE = "redis:7-alpine"
_POSTGRES_IMAGE = "postgres:16-alpine"
_PING_TIMEOUT = 3


def _socket_candidates() -> list[Path]:
    home = Path.home()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    found = [
        Path("/var/run/docker.sock"),
        home / ".docker/run/docker.sock",  # Docker Desktop
        home / ".colima/default/docker.sock",
        home / ".rd/docker.sock",  # Rancher Desktop
    ]
    if runtime:
        found.append(Path(runtime) / "docker.sock")  # rootless Docker
    return found


def _properties_host() -> str | None:
    """``tc.host`` or ``docker.host`` from ``~/.testcontainers.properties``."""
    path = Path.home() / ".testcontainers.properties"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in ("tc.host", "docker.host") and value.strip():
            return value.strip()
    return None


def docker_host() -> str | None:
    """Where a Docker engine should be: ``$DOCKER_HOST``, Testcontainers' properties, a socket.

    Returns None when nothing points at one (checked without any network call).
    """
    explicit = os.environ.get("DOCKER_HOST", "").strip() or _properties_host()
    if explicit:
        return explicit
    for sock in _socket_candidates():
        if sock.exists():
            return f"unix://{sock}"
    return None


class ContainersProvider:
    """Starts ``redis:7-alpine`` and ``postgres:16-alpine`` containers (images overridable by
    ``$PORTSIDE_REDIS_IMAGE`` / ``$PORTSIDE_POSTGRES_IMAGE``), tuned for tests.

    Testcontainers' reaper removes them if the session dies without cleaning up.
    """

    name: ProviderName = "containers"

    def __init__(self) -> None:
        self._redis: Any = None
        self._postgres: Any = None
        self._host: str | None = None

    def probe(self) -> str:
        host = docker_host()
        fix = "start Docker (or set DOCKER_HOST), or use --portside-servers=local"
        if host is None:
            sockets = ", ".join(str(s) for s in _socket_candidates())
            raise ProviderUnavailable(f"no Docker engine (DOCKER_HOST unset; no {sockets})", fix)
        parts = urlsplit(host)
        if parts.scheme == "unix" and not Path(parts.path).exists():
            raise ProviderUnavailable(f"no Docker engine at {host}", fix)
        try:
            docker: Any = importlib.import_module("docker")
            client = docker.DockerClient(base_url=host, timeout=_PING_TIMEOUT)
            try:
                client.ping()
                version = client.version().get("Version", "?")
            finally:
                client.close()
        except ImportError as exc:
            raise ProviderUnavailable(
                "the testcontainers package is not installed", "pip install 'portside[testing]'"
            ) from exc
        except Exception as exc:
            reason = f"Docker engine at {host} did not answer: {exc}"
            raise ProviderUnavailable(reason, fix) from exc
        self._host = host
        return f"Docker {version} at {host}; {self._images()}"

    def _images(self) -> str:
        redis = os.environ.get(REDIS_IMAGE_ENV, _REDIS_IMAGE)
        postgres = os.environ.get(POSTGRES_IMAGE_ENV, _POSTGRES_IMAGE)
        return f"{redis}, {postgres}"

    def _environment(self) -> None:
        if self._host and not os.environ.get("DOCKER_HOST"):
            os.environ["DOCKER_HOST"] = self._host

    def redis_url(self) -> str:
        if self._redis is None:
            self._environment()
            from testcontainers.community.redis import RedisContainer

            image = os.environ.get(REDIS_IMAGE_ENV, _REDIS_IMAGE)
            container = RedisContainer(image).with_command("redis-server --save '' --appendonly no")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                container.start()
            self._redis = container
        host = self._redis.get_container_host_ip()
        return f"redis://{host}:{self._redis.get_exposed_port(6379)}/0"

    def postgres_dsn(self) -> str:
        if self._postgres is None:
            self._environment()
            from testcontainers.community.postgres import PostgresContainer

            image = os.environ.get(POSTGRES_IMAGE_ENV, _POSTGRES_IMAGE)
            container = PostgresContainer(
                image, username="postgres", password="postgres", dbname="postgres", driver=None
            ).with_command(
                "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                container.start()
            self._postgres = container
        url: str = self._postgres.get_connection_url(driver=None)
        return url

    def close(self) -> None:
        for container in (self._postgres, self._redis):
            if container is not None:
                container.stop()
        self._redis = None
        self._postgres = None
