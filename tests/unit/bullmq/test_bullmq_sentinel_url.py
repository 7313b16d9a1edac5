"""S2: parsing ``redis+sentinel://`` URLs, and the messages for malformed ones."""

from __future__ import annotations

import pytest

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.bullmq.settings import redacted_url
from portside.adapters.bullmq.transport.sentinel import parse_sentinel_url
from portside.ports import ConfigurationError


def test_s2_hosts_service_db_credentials_and_options_are_read() -> None:
    """S2: every part of the URL lands where redis-py expects it."""
    url = (
        "redis+sentinel://app:p%40ss@10.0.0.1:26380,10.0.0.2,[::1]:26381/orders/3"
        "?sentinel_password=s3&socket_keepalive=true&health_check_interval=5"
    )
    parsed = parse_sentinel_url(url, redacted_url(url))
    assert parsed.sentinels == (("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 26381))
    assert parsed.service == "orders"
    assert parsed.db == 3
    assert parsed.master_options == {
        "username": "app",
        "password": "p@ss",
        "socket_keepalive": True,
        "health_check_interval": 5,
    }
    assert parsed.sentinel_options == {"password": "s3"}


def test_s2_the_password_is_hidden_in_messages() -> None:
    """S2: the redacted form keeps every Sentinel host and hides the password."""
    assert (
        redacted_url("redis+sentinel://app:secret@h1:26379,h2:26379/orders")
        == "redis+sentinel://app:***@h1:26379,h2:26379/orders"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://10.0.0.1:26379", "service name"),
        ("redis+sentinel://10.0.0.1:26379/orders/x", "database 'x'"),
        ("redis+sentinel://10.0.0.1:port/orders", "port that is not a number"),
        ("redis+sentinel://10.0.0.1:70000/orders", "outside 1-65535"),
        ("redis+sentinel:///orders", "names no Sentinel"),
        ("redis+sentinel://h:1/orders?health_check_interval=soon", "health_check_interval"),
    ],
)
def test_s2_a_malformed_sentinel_url_names_the_problem(url: str, message: str) -> None:
    """S2: the adapter refuses a malformed Sentinel URL at construction, saying what is
    wrong, with the format in the fix and ``redis_url`` as the field."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        BullMQQueue(url)
    assert caught.value.field == "redis_url"
    assert "redis+sentinel://" in (caught.value.fix or "")
