"""The Procfile is the one list of processes: `up` runs it and the README's production section
runs the same list."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from django.conf import settings

from workspace.core.procfile import (
    ProcfileError,
    procfile_expand,
    procfile_read,
    procfile_specs,
)

ROOT = Path(settings.BASE_DIR)


def test_the_procfile_declares_every_process_and_every_queue() -> None:
    processes = procfile_read(ROOT / "Procfile")
    assert list(processes) == ["web", "worker", "dispatch", "scheduler", "simulator"]
    queues = {
        shlex.split(command)[3]
        for command in processes.values()
        if shlex.split(command)[1:3] == ["manage.py", "rqworker"]
    }
    assert queues == set(settings.RQ_QUEUES)
    for command in processes.values():
        # A pinned worker name clashes with its own dead registration after a SIGKILL; RQ's
        # default name is new at every start.
        assert "--name" not in command


def test_the_readme_production_section_runs_the_procfile_and_names_every_queue() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it in production", 1)[1].split("\n## ", 1)[0]
    assert "honcho start" in section
    for name in procfile_read(ROOT / "Procfile"):
        assert re.search(rf"`{name}`", section), name
    for queue in settings.RQ_QUEUES:
        assert f"`{queue}`" in section, queue


def test_lines_expand_like_sh() -> None:
    variables = {"PORT": "9000", "EMPTY": ""}
    assert procfile_expand("a $PORT ${PORT} ${HOST:-0.0.0.0}", variables) == "a 9000 9000 0.0.0.0"
    assert procfile_expand("${EMPTY:-fallback} ${PORT:-1}", variables) == "fallback 9000"
    with pytest.raises(ProcfileError, match="HOST"):
        procfile_expand("--bind $HOST", variables)


def test_specs_run_the_interpreter_of_up_and_name_copies_like_honcho(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# a comment, ignored like honcho and foreman do\n"
        "web: python -m http.server ${PORT:-8000}\n"
        "worker: python manage.py rqworker default\n"
        "extra: /bin/true\n"
    )
    specs = procfile_specs(
        procfile_read(procfile),
        counts={"worker": 2, "extra": 0},
        variables={"PORT": "9000"},
        python="/venv/bin/python",
    )
    assert [(s.name, list(s.argv)) for s in specs] == [
        ("web.1", ["/venv/bin/python", "-m", "http.server", "9000"]),
        ("worker.1", ["/venv/bin/python", "manage.py", "rqworker", "default"]),
        ("worker.2", ["/venv/bin/python", "manage.py", "rqworker", "default"]),
    ]
    with pytest.raises(ProcfileError, match="nope"):
        procfile_specs(procfile_read(procfile), counts={"nope": 1}, variables={}, python="p")


def test_a_process_declared_twice_is_refused(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: a\nweb: b\n")
    with pytest.raises(ProcfileError, match="twice"):
        procfile_read(procfile)


def test_the_web_server_keeps_its_database_connections_unless_told_not_to() -> None:
    """A connect (and a PostgreSQL backend started) per request was ~4 ms of every live update
    (docs/benchmarks.md); gunicorn passes the setting to the app it loads."""
    web = {"web": procfile_read(ROOT / "Procfile")["web"]}
    (kept,) = procfile_specs(web, counts={}, variables={}, python="python")
    assert "DATABASE_CONN_MAX_AGE=60" in kept.argv
    assert kept.argv[kept.argv.index("DATABASE_CONN_MAX_AGE=60") - 1] == "--env"
    (each,) = procfile_specs(
        web, counts={}, variables={"DATABASE_CONN_MAX_AGE": "0"}, python="python"
    )
    assert "DATABASE_CONN_MAX_AGE=0" in each.argv
