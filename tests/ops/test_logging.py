"""REELHOUSE_LOG_FORMAT=json: one JSON object per log line, tracebacks included, no request."""

from __future__ import annotations

import json
import logging
import sys

from django.test import RequestFactory

from tests.core.test_settings import start_django
from workspace.core.logging import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("workspace.test")
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        exc_info = sys.exc_info()
    made = logger.makeRecord(
        "workspace.test", logging.ERROR, __file__, 1, "sent %d of %s", (3, "five"), exc_info
    )
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_record_becomes_one_json_line_with_its_fields() -> None:
    request = RequestFactory().get("/projects/1/", HTTP_COOKIE="sessionid=do-not-log-me")
    line = JsonFormatter().format(record(status_code=500, request=request, generation="g-1"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "workspace.test"
    assert entry["message"] == "sent 3 of five"
    assert entry["time"].endswith("+00:00")
    assert "ValueError: broken\nacross lines" in entry["exc_info"]
    assert (entry["status_code"], entry["generation"]) == (500, "g-1")
    # The request is reduced to what it asked for: its cookies stay out of the log.
    assert entry["request"] == "GET /projects/1/"
    assert "do-not-log-me" not in line


def test_the_switch_selects_the_json_formatter_for_every_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = "import logging; logging.getLogger('workspace.probe').warning('hello %s', 'ops')"
    plain = start_django(tmp_path, "shell", "-c", script)
    assert plain.returncode == 0, plain.stderr
    assert "WARNING workspace.probe: hello ops" in plain.stderr

    json_run = start_django(tmp_path, "shell", "-c", script, REELHOUSE_LOG_FORMAT="json")
    assert json_run.returncode == 0, json_run.stderr
    [line] = [line for line in json_run.stderr.splitlines() if "workspace.probe" in line]
    entry = json.loads(line)
    assert (entry["logger"], entry["level"], entry["message"]) == (
        "workspace.probe",
        "WARNING",
        "hello ops",
    )
