"""The live-update request at 50 open pages, over HTTP against the real server.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python bench/gallery_live_http.py

``bench/gallery.py`` times the live request with 50 threads in its own process: the GIL queues
them, so its figure is the server's work plus that queue. This one runs the server as
``python3 reelhouse.py up`` does (the Procfile's ``web`` line, read from the Procfile: gunicorn,
``--workers`` 2 by default, 4 threads each, connections kept unless DATABASE_CONN_MAX_AGE=0) on the scratch database ``bench/gallery.py`` seeded (run that first),
and opens the 50 pages from ``--clients`` separate client processes, each page asking every 3 s
(a new connection each time: gunicorn closes one idle for 2 s) with its own cursor, as the project page's script does.
Latency is measured by the clients (connection included, from the request's first byte to the
answer's last). Meanwhile one in-flight card changes every ``--churn`` seconds (its row
touched, as a status check does), so answers carry re-rendered cards as well as moving state.

Prints the figures; docs/benchmarks.md keeps the latest with the machine they came from.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gallery import OPEN_PAGES, PAGE_INTERVAL, live_query, percentile


def client_process(
    port: int, path: str, cookie: str, pages: int, first: int, duration: float, out: str
) -> None:
    """``pages`` open pages in one process (threads: each mostly waits for its next turn)."""
    results: list[tuple[float, int, int]] = []
    lock = threading.Lock()
    began = time.monotonic()

    def page(index: int) -> None:
        cursor = f"{time.time() - 30:.6f}"
        held: dict[str, int] = {}
        time.sleep(PAGE_INTERVAL * index / OPEN_PAGES)  # pages opened at different moments
        while time.monotonic() - began < duration:
            asked = time.monotonic()
            started = time.perf_counter()
            # A new connection each time, as the browser's: gunicorn closes one idle for 2 s.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(
                "GET", path + live_query(cursor, held), headers={"Cookie": cookie, "Accept": "application/json"}
            )
            answer = connection.getresponse()
            body = answer.read()
            millis = (time.perf_counter() - started) * 1000
            connection.close()
            assert answer.status == 200, (answer.status, body[:200])
            data = json.loads(body)
            cursor = data["cursor"]
            held.update({c["id"]: c["version"] for c in data["cards"] if "version" in c})
            with lock:
                results.append((millis, len(data["cards"]), len(data.get("moving", []))))
            time.sleep(max(0.0, PAGE_INTERVAL - (time.monotonic() - asked)))

    threads = [threading.Thread(target=page, args=(first + n,)) for n in range(pages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(out).write_text(json.dumps(results))


def server_cpu_seconds(master: int) -> float:
    """CPU time (user + system) of the gunicorn master and its workers so far."""
    pids = [master]
    for task in Path(f"/proc/{master}/task").iterdir():
        pids += [int(pid) for pid in (task / "children").read_text().split()]
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5, help="client processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--churn", type=float, default=3.0, help="seconds between card changes")
    parser.add_argument("--port", type=int, default=8391)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("The gallery benchmark measures PostgreSQL: set DATABASE_URL to one.")
    from _harness import ROOT, machine, scratch_database_url, setup_django

    os.environ["DATABASE_URL"] = scratch_database_url("gallery", fresh=False)
    env = setup_django(name="gallery", time_scale=1.0)
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from workspace.generations.models import ACTIVE_STATUSES, Generation
    from workspace.projects.models import Project

    settings.ALLOWED_HOSTS = ["*"]
    try:
        big = Project.objects.get(name="Big project")
    except Project.DoesNotExist:
        sys.exit("No seeded gallery: run bench/gallery.py first (same DATABASE_URL).")
    login = Client()
    login.force_login(User.objects.get(username="member1"))
    cookie = f"{settings.SESSION_COOKIE_NAME}={login.cookies[settings.SESSION_COOKIE_NAME].value}"
    path = reverse("generations:live", args=[big.pk])
    in_flight = list(
        Generation.objects.filter(project=big, status__in=ACTIVE_STATUSES).values_list(
            "pk", flat=True
        )
    )
    # The Procfile's web line, as `up` runs it (its variables from this environment), without
    # the access log (a line per request on this terminal).
    from workspace.core.procfile import procfile_read, procfile_specs

    variables = {**env, "HOST": "127.0.0.1", "PORT": str(args.port)}
    variables["WEB_CONCURRENCY"] = str(args.web_workers)
    (web,) = procfile_specs(
        {"web": procfile_read(ROOT / "Procfile")["web"]},
        counts={},
        variables=variables,
        python=sys.executable,
    )
    argv = list(web.argv)
    if "--access-logfile" in argv:
        del argv[argv.index("--access-logfile") : argv.index("--access-logfile") + 2]
    print("Server:", " ".join(argv[1:]))
    server = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**env, "ALLOWED_HOSTS": "127.0.0.1,localhost"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
                probe.request("GET", f"{path}?since=0", headers={"Cookie": cookie})
                status = probe.getresponse().status
                probe.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("The server did not answer.")
            time.sleep(0.5)
        stop = threading.Event()

        def churn() -> None:
            n = 0
            while not stop.wait(args.churn):
                Generation.objects.filter(pk=in_flight[n % len(in_flight)]).update(
                    updated_at=timezone.now()
                )
                n += 1
            connection.close()

        churner = threading.Thread(target=churn)
        if in_flight and args.churn > 0:
            churner.start()
        load_before = os.getloadavg()
        cpu_before = server_cpu_seconds(server.pid)
        per_client = OPEN_PAGES // args.clients
        outputs = [f"/tmp/gallery-live-http-{os.getpid()}-{n}.json" for n in range(args.clients)]
        began = time.monotonic()
        clients = [
            multiprocessing.Process(
                target=client_process,
                args=(args.port, path, cookie, per_client, n * per_client, args.duration, out),
            )
            for n, out in enumerate(outputs)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - began
        server_cpu = server_cpu_seconds(server.pid) - cpu_before
        stop.set()
        if churner.is_alive():
            churner.join()
    finally:
        server.terminate()
        server.wait(timeout=20)
    results: list[tuple[float, int, int]] = []
    for out in outputs:
        results += json.loads(Path(out).read_text())
        Path(out).unlink()
    millis = [r[0] for r in results]
    print(
        f"{machine()}; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(
        f"Live updates over HTTP: {OPEN_PAGES} pages from {args.clients} client processes, "
        f"gunicorn {args.web_workers} workers x 4 threads, {len(in_flight)} cards in flight, "
        f"one changing every {args.churn:g} s ({len(results) / elapsed:.1f} requests/s):"
    )
    print(
        f"  live request over HTTP             n={len(millis):>4}  median "
        f"{statistics.median(millis):6.1f} ms  p95 {percentile(millis, 0.95):6.1f} ms  "
        f"max {max(millis):6.1f} ms  cards {min(r[1] for r in results)}-"
        f"{max(r[1] for r in results)}, moving {min(r[2] for r in results)}-"
        f"{max(r[2] for r in results)}"
    )
    print(f"  server CPU per request (gunicorn's processes): {server_cpu * 1000 / len(results):.1f} ms")


if __name__ == "__main__":
    main()
