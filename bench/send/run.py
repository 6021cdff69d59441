"""Sending benchmarks, each compared with a peer measured in the same run.

    python bench/send/run.py throughput [--quick]  # vs Postfix smtp-source and mailmerge
    python bench/send/run.py memory [--quick]      # peak RSS, 10,000 vs 1,000,000 subscribers
    python bench/send/run.py crash [--quick]       # kill -9 ten times, resume, count
    python bench/send/run.py all [--quick]

Every sender run is a child process (``_send``) reading a real SQLite store and
talking SMTP to a sink on loopback: Postfix's ``smtp-sink`` for speed and memory,
an aiosmtpd sink that records each recipient for the crash test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CONNECTIONS = 4
SENDER = "news@digest.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


# -- the issue ---------------------------------------------------------------


def rendered():
    """A digest of realistic size (about 20 kB of HTML): twelve items in three sections."""
    from digest.models import Rendered, Slot

    items_html, items_text = [], []
    for n in range(12):
        title = f"Harbour authority publishes its plan for the {n + 1}th pier"
        summary = (
            "The port's planners say the works will take three seasons and keep one lane of "
            "the quay open for the ferries throughout; residents asked for quieter night "
            "shifts and the council agreed to review the schedule every month. "
        ) * 2
        items_html.append(
            '<tr><td style="padding:12px 24px;font-family:Georgia,serif;color:#1a1a1a">'
            f'<h2 style="margin:0 0 6px;font-size:20px"><a href="https://news.digest.test/a/{n}" '
            f'style="color:#0b3d91;text-decoration:none">{title}</a></h2>'
            f'<p style="margin:0;font-size:16px;line-height:1.5">{summary}</p></td></tr>'
        )
        items_text.append(f"{title}\n{summary}\nhttps://news.digest.test/a/{n}\n")
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Weekly</title></head>'
        '<body style="margin:0;background:#f4f4f4"><table role="presentation" width="100%">'
        '<tr><td style="padding:24px">@@greeting@@</td></tr>'
        + "".join(items_html)
        + '<tr><td style="padding:24px;font-size:12px"><a href="@@unsubscribe@@">Unsubscribe</a> · '
        '<a href="@@preferences@@">Preferences</a></td></tr></table></body></html>'
    )
    text = (
        "@@greeting@@\n\n"
        + "\n".join(items_text)
        + "\nUnsubscribe: @@unsubscribe@@\nPreferences: @@preferences@@\n"
    )
    return Rendered(
        subject="Weekly digest #1: the harbour plan",
        preheader="Twelve stories",
        html=html,
        text=text,
        slots=(
            (Slot.GREETING, "@@greeting@@"),
            (Slot.UNSUBSCRIBE_URL, "@@unsubscribe@@"),
            (Slot.PREFERENCES_URL, "@@preferences@@"),
        ),
    )


def factory():
    from digest.models import Slot
    from digest.personalize import MessageFactory

    return MessageFactory(
        rendered(),
        sender=f"Weekly Digest <{SENDER}>",
        list_id='"Weekly" <weekly.news.digest.test>',
        links=lambda s: {
            Slot.UNSUBSCRIBE_URL: f"https://news.digest.test/unsubscribe/{s.id}-token",
            Slot.PREFERENCES_URL: f"https://news.digest.test/preferences/{s.id}-token",
        },
        message_key="weekly.1",
        date=datetime(2026, 11, 22, 7, 0, tzinfo=UTC),
    )


def make_db(path: Path, n: int) -> None:
    """A SQLite store with list ``news`` of ``n`` generated subscribers and issue 1 queued."""
    from sqlalchemy import insert

    from digest.store import Store, ledger
    from digest.store.tables import IssueRow, ListRow, SubscriberRow, utcnow

    store = Store(f"sqlite:///{path}")
    r = rendered()
    with store.session() as session:
        lst = ListRow(name="news")
        session.add(lst)
        session.flush()
        now = utcnow()
        for start in range(0, n, 50_000):
            session.execute(
                insert(SubscriberRow),
                [
                    {
                        "list_id": lst.id,
                        "email": f"reader{i}@example.test",
                        "email_key": f"reader{i}@example.test",
                        "name": f"Reader {i}",
                        "status": "active",
                        "status_source": "import",
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(n, start + 50_000))
                ],
            )
        issue = IssueRow(
            newsletter="weekly",
            number=1,
            issue_date="2026-11-22",
            subject=r.subject,
            html=r.html,
            text=r.text,
            slots=dict(r.slots),
        )
        session.add(issue)
        session.flush()
        ledger.queue(session, issue.id, "news")
    store.engine.dispose()


def message_size() -> int:
    from digest.models import Subscriber

    return len(
        factory()
        .build(Subscriber(id=12345, email="reader12345@example.test", name="Reader 12345"))
        .data
    )


# -- the sender (child process) ----------------------------------------------


def child_send(db: str, port: int, connections: int) -> None:
    """Send issue 1 of ``db`` to 127.0.0.1:``port``; print a JSON line of figures."""
    from digest.backends.smtp import SmtpBackend, SmtpBackendConfig
    from digest.dispatch import send_issue
    from digest.store import Store

    store = Store(f"sqlite:///{db}")
    config = SmtpBackendConfig(
        type="smtp",
        host="127.0.0.1",
        port=port,
        security="none",
        connections=connections,
        max_messages_per_connection=100_000,
    )

    async def main() -> dict[str, float]:
        async with SmtpBackend("sink", config) as backend:
            started = time.perf_counter()
            report = await send_issue(store, 1, factory(), backend)
            seconds = time.perf_counter() - started
        return {"sent": report.sent, "failed": report.failed, "seconds": seconds}

    figures = asyncio.run(main())
    figures["maxrss_kb"] = peak_rss_kb()
    print(json.dumps(figures), flush=True)


def peak_rss_kb() -> int:
    """This process's peak resident memory. Not ``getrusage``: Linux carries ru_maxrss
    over ``execve``, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_sender(
    db: Path, port: int, connections: int = CONNECTIONS, processes: int = 1
) -> dict[str, float]:
    """Run ``processes`` senders at once on the same store, ``connections`` in all
    (they share the ledger through claims); figures summed, time from first start to
    last end."""
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "_send", str(db), str(port), str(connections // processes)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"a sender exited with {child.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    return {
        "sent": sum(r["sent"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "seconds": wall if processes > 1 else results[0]["seconds"],
        "maxrss_kb": max(r["maxrss_kb"] for r in results),
    }


# -- sinks -------------------------------------------------------------------


class SmtpSink:
    """Postfix's smtp-sink on a loopback port: accepts and discards everything."""

    def __init__(self) -> None:
        binary = shutil.which("smtp-sink")
        if binary is None:
            sys.exit("smtp-sink is not installed (apt-get install postfix)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "-u", "nobody", f"127.0.0.1:{self.port}", "1024"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class RecordingSink:
    """An aiosmtpd server in this process counting every accepted recipient."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.received.update(envelope.rcpt_tos)
                return "250 2.0.0 Ok"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def total(self) -> int:
        with self.lock:
            return sum(self.received.values())

    def stop(self) -> None:
        self.controller.stop()


# -- benchmarks ----------------------------------------------------------------


def bench_throughput(work: Path, quick: bool, processes: int) -> None:
    n = 10_000 if quick else 100_000
    size = message_size()
    sink = SmtpSink()
    try:
        db = work / "throughput.db"
        make_db(db, n)
        ours = run_sender(db, sink.port, processes=processes)
        rate = ours["sent"] / ours["seconds"]

        started = time.perf_counter()
        subprocess.run(
            [
                "smtp-source",
                "-d",
                "-N",
                "-s",
                str(CONNECTIONS),
                "-m",
                str(n),
                "-l",
                str(size),
                "-f",
                SENDER,
                "-t",
                "reader@example.test",
                f"127.0.0.1:{sink.port}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        peer_rate = n / (time.perf_counter() - started)

        m = 2_000
        mm_rate = mailmerge_rate(work, sink.port, m)
        small_db = work / "small.db"
        make_db(small_db, m)
        ours_small = run_sender(small_db, sink.port, processes=processes)
        small_rate = ours_small["sent"] / ours_small["seconds"]
    finally:
        sink.stop()
    print(
        f"message size: {size} bytes, {CONNECTIONS} connections in all "
        f"({processes} sender process(es)), sink: smtp-sink on loopback"
    )
    print(f"digest        {n:>7} recipients: {rate:8.0f} msg/s ({ours['seconds']:.1f}s)")
    print(f"smtp-source   {n:>7} messages:   {peer_rate:8.0f} msg/s")
    print(f"  ratio digest/smtp-source: {rate / peer_rate:.2f} (target >= 0.5)")
    print(f"digest        {m:>7} recipients: {small_rate:8.0f} msg/s")
    print(f"mailmerge     {m:>7} recipients: {mm_rate:8.0f} msg/s")
    print(f"  ratio digest/mailmerge: {small_rate / mm_rate:.1f}x (target >= 20x)")


def mailmerge_rate(work: Path, port: int, n: int) -> float:
    """mailmerge sending ``n`` personalised copies of the same digest to the sink."""
    r = rendered()
    folder = work / "mailmerge"
    folder.mkdir(exist_ok=True)
    html = (
        r.html.replace("@@greeting@@", "Hi {{name}},")
        .replace("@@unsubscribe@@", "https://news.digest.test/unsubscribe/{{id}}-token")
        .replace("@@preferences@@", "https://news.digest.test/preferences/{{id}}-token")
    )
    text = (
        r.text.replace("@@greeting@@", "Hi {{name}},")
        .replace("@@unsubscribe@@", "https://news.digest.test/unsubscribe/{{id}}-token")
        .replace("@@preferences@@", "https://news.digest.test/preferences/{{id}}-token")
    )
    (folder / "template.txt").write_text(
        f"TO: {{{{email}}}}\nSUBJECT: {r.subject}\nFROM: Weekly Digest <{SENDER}>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b0undary"\n\n'
        f"--b0undary\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
        f"--b0undary\nContent-Type: text/html; charset=utf-8\n\n{html}\n--b0undary--\n"
    )
    with (folder / "database.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "id"])
        for i in range(n):
            writer.writerow([f"reader{i}@example.test", f"Reader {i}", i])
    (folder / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n"
    )
    mailmerge = shutil.which("mailmerge") or str(Path(sys.executable).parent / "mailmerge")
    started = time.perf_counter()
    subprocess.run(
        [
            mailmerge,
            "--no-dry-run",
            "--no-limit",
            "--template",
            str(folder / "template.txt"),
            "--database",
            str(folder / "database.csv"),
            "--config",
            str(folder / "server.conf"),
            "--output-format",
            "raw",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=folder,
    )
    return n / (time.perf_counter() - started)


def bench_memory(work: Path, quick: bool) -> None:
    small, large = (10_000, 100_000) if quick else (10_000, 1_000_000)
    sink = SmtpSink()
    figures = {}
    try:
        for n in (small, large):
            db = work / f"memory-{n}.db"
            make_db(db, n)
            figures[n] = run_sender(db, sink.port)
            db.unlink()
    finally:
        sink.stop()
    for n, fig in figures.items():
        print(
            f"{n:>9} subscribers: peak RSS {fig['maxrss_kb'] / 1024:7.1f} MiB, "
            f"{fig['sent'] / fig['seconds']:.0f} msg/s"
        )
    ratio = figures[large]["maxrss_kb"] / figures[small]["maxrss_kb"]
    print(f"  ratio {large}/{small}: {ratio:.2f} (target <= 1.3)")


def bench_crash(work: Path, quick: bool) -> None:
    from sqlalchemy import func, select

    from digest.backends.smtp import SmtpBackend, SmtpBackendConfig
    from digest.dispatch import SendOptions, in_flight_window
    from digest.store import Store
    from digest.store.tables import DeliveryRow

    n = 5_000 if quick else 20_000
    kills = 10
    db = work / "crash.db"
    make_db(db, n)
    sink = RecordingSink()
    rng = random.Random(20261122)
    killed = 0
    try:
        while killed < kills:
            child = subprocess.Popen(
                [sys.executable, __file__, "_send", str(db), str(sink.port), str(CONNECTIONS)],
                stdout=subprocess.DEVNULL,
            )
            done = sink.total()
            remaining = n - len(sink.received)
            # A random moment: after a random share of what is left has arrived.
            target = done + rng.randint(1, max(2, remaining // (kills - killed + 1)))
            while sink.total() < target and child.poll() is None:
                time.sleep(0.002)
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                killed += 1
        final = subprocess.run(
            [sys.executable, __file__, "_send", str(db), str(sink.port), str(CONNECTIONS)],
            check=True,
            capture_output=True,
        )
        assert final.returncode == 0
        time.sleep(0.2)
    finally:
        sink.stop()
    store = Store(f"sqlite:///{db}")
    with store.session() as session:
        sent_rows = session.scalar(
            select(func.count(DeliveryRow.id)).where(DeliveryRow.status == "sent")
        )
    expected = {f"reader{i}@example.test" for i in range(n)}
    lost = len(expected - set(sink.received))
    duplicates = sum(sink.received.values()) - len(sink.received)

    sink_config = SmtpBackendConfig(type="smtp", host="127.0.0.1", connections=CONNECTIONS)
    window = in_flight_window(SmtpBackend("sink", sink_config), SendOptions())
    print(f"{n} recipients, {killed} kill -9 at random moments, resumed each time")
    print(f"ledger rows sent: {sent_rows}/{n}")
    print(f"lost: {lost} (must be 0)")
    print(
        f"duplicates: {duplicates} in all, in-flight window {window} per crash "
        f"(at most {window * killed} over {killed} crashes)"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        child_send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["throughput", "memory", "crash", "all"])
    parser.add_argument("--quick", action="store_true", help="smaller runs, same comparisons")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="sender processes sharing the ledger for the throughput run (connections split)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-bench-send-"))
    try:
        for name, bench in (
            ("throughput", lambda w, q: bench_throughput(w, q, args.processes)),
            ("memory", bench_memory),
            ("crash", bench_crash),
        ):
            if args.which in (name, "all"):
                print(f"== {name} ==", flush=True)
                bench(work, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
