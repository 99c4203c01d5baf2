"""A request aiohttp cannot parse as HTTP is the client's fault: logged like every client error (INFO, no
traceback), not as an ERROR with one; a fault of the server is still logged as aiohttp logs it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from gateway.services import Services
from tests.security.test_slow_clients import served, until_closed

DUPLICATE_TYPE = (
    b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
)


async def test_a_request_that_is_not_valid_http_is_a_client_error_in_the_log(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    async with served(services) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(DUPLICATE_TYPE)
        answer = await asyncio.wait_for(until_closed(reader), 10)
        writer.close()
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert "client error BAD_HTTP_REQUEST from 127.0.0.1: Duplicate 'Content-Type' header found." in (
        records[0].getMessage()
    )


def test_other_faults_are_logged_as_aiohttp_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.web.server import ProtocolLog

    log = ProtocolLog(logging.getLogger("aiohttp.server"), {})
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        log.exception("Error handling request from %s", "10.0.0.1", exc_info=RuntimeError("boom"))
        log.exception("Error handling request from %s", "10.0.0.2", exc_info=BadHttpMessage("bad header"))
    error, client = caplog.records
    assert (error.levelno, error.getMessage()) == (logging.ERROR, "Error handling request from 10.0.0.1")
    assert error.exc_info is not None and isinstance(error.exc_info[1], RuntimeError)
    assert (client.levelno, client.exc_info) == (logging.INFO, None)
    assert client.getMessage() == "client error BAD_HTTP_REQUEST from 10.0.0.2: bad header"
