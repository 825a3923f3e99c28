"""The CLI's logging helpers."""

from __future__ import annotations

import logging

import pytest

from tether.surfaces.logs import quiet_logs


def test_quiet_logs_hides_records_and_puts_the_previous_level_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tether.test.quiet")
    logging.disable(logging.INFO)  # set by the application before
    try:
        with quiet_logs():
            log.error("hidden")
            assert logging.root.manager.disable == logging.ERROR
        assert logging.root.manager.disable == logging.INFO
        with quiet_logs(enabled=False):
            log.warning("shown")
    finally:
        logging.disable(logging.NOTSET)
    assert [r.getMessage() for r in caplog.records] == ["shown"]
