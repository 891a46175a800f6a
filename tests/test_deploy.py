"""deploy/: the systemd units pass `systemd-analyze verify`, the Dockerfiles hadolint,
the shell scripts shellcheck, and nginx.conf `nginx -t` where nginx is installed
(deploy/check.sh).
Building and running the images takes minutes and root (podman), so it is not part of
the suite: deploy/container-smoke.sh does it (see the README's Deploying section)."""

from __future__ import annotations

import hashlib
import http.client
import multiprocessing
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.synchronize import Barrier
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, text

from digest.app import make_app, publishing
from digest.config import SubscribeSection, WebSection
from digest.state import db, locks
from digest.web.middleware import SECURITY_HEADERS
from tests.support.dumps import ROOT, write_dump
from tests.support.net import free_port
from tests.support.postgres import new_pg_database
from tests.support.settings import make_settings
from tests.support.waiting import HANG, wait_for
from tests.support.web import Served, serve


def test_deploy_files_pass_their_checkers() -> None:
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ, HADOLINT=str(bin_dir / "hadolint"), SHELLCHECK=str(bin_dir / "shellcheck")
    )
    env["DIGEST_BIN"] = str(Path(sys.executable).parent / "digest")
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "check.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemd units: ok" in result.stdout
    assert "Dockerfiles: hadolint ok" in result.stdout
    assert "shell scripts: shellcheck ok" in result.stdout


def test_every_unit_runs_a_real_command_and_the_worker_is_a_template() -> None:
    units = {p.name: p.read_text() for p in (ROOT / "deploy").glob("*.service")}
    assert set(units) == {"digest.service", "digest-web.service", "digest-worker@.service"}
    commands = {n: t.split("ExecStart=")[1].splitlines()[0].split()[1:] for n, t in units.items()}
    assert commands == {
        "digest.service": ["run"],
        "digest-web.service": ["serve"],
        "digest-worker@.service": ["worker"],
    }
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    for service in ("postgres:", "postfix:", "daemon:", "web:", "worker:", "replicas: 2"):
        assert service in compose
    # podman-compose starts one worker unless the mode is spelled out; relative folders in
    # digest.toml would resolve under its read-only mount (both seen running the stack)
    assert "mode: replicated, replicas: 2" in compose
    assert "DIGEST_DIGEST_STATE_DIR: /srv/digest/state" in compose
    assert "DIGEST_DIGEST_DUMPS_DIR: /srv/digest/dumps" in compose


UNITS = ("digest.service", "digest-web.service", "digest-worker@.service")


def _unit_values(name: str, key: str) -> list[str]:
    text_ = (ROOT / "deploy" / name).read_text()
    return [line.split("=", 1)[1] for line in text_.splitlines() if line.startswith(key + "=")]


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_scores_under_4_in_systemd_analyze_security(name: str) -> None:
    """The units scored 8.5 EXPOSED; `--offline=true` scores the file as it would run."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(ROOT / "deploy" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) < 4.0, result.stdout


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_writes_only_the_state_folder_and_creates_private_files(name: str) -> None:
    """The code (.venv) and the settings (digest.toml) stay read-only to the service."""
    assert _unit_values(name, "ReadWritePaths") == ["/srv/digest/state"]
    assert _unit_values(name, "ProtectSystem") == ["strict"]
    assert _unit_values(name, "UMask") == ["0077"]
    assert _unit_values(name, "ExecStart")[0].startswith("/srv/digest/.venv/")
    assert _unit_values(name, "Environment") == ["DIGEST_CONFIG=/srv/digest/digest.toml"]


PAPERS = [
    ("Sparse Mixture of Experts Routing", "We route tokens to experts with a router. " * 4),
    ("Music Generation with Diffusion", "We generate music and audio from text. " * 4),
]
PROXY = "127.0.0.2"  # nginx talks to digest serve from this address (proxy_bind)


def _site(tmp_path: Path, trusted_proxies: list[str]) -> Iterator[Served]:
    """digest serve, one issue published, a subscribe limit of one per address and hour."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_dump(dumps / "first.txt", PAPERS)
    settings = make_settings(tmp_path, dumps)
    settings = replace(
        settings,
        web=WebSection(trusted_proxies=trusted_proxies),
        subscribe=SubscribeSection(max_per_ip_hour=1),
    )
    app = make_app(settings)
    publishing.send(app)
    yield from serve(app)


def _nginx(tmp_path: Path, site: Served) -> Iterator[int]:
    """Debian's nginx running deploy/nginx.conf on loopback: the root, the listening port
    and the upstream moved to this test's, and the upstream reached from PROXY."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is not installed (.ci/system-deps.sh installs it)"
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in [
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("root /srv/digest/state/public;", f"root {site.app.settings.public_dir};"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{site.port};"),
        ("server_name news.example.org;", f"server_name localhost; proxy_bind {PROXY};"),
    ]:
        assert old in conf, old
        conf = conf.replace(old, new)
    run = tmp_path / "nginx"
    run.mkdir()
    (run / "site.conf").write_text(conf)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the test's tmp_path
    (run / "nginx.conf").write_text(
        f"{user}daemon off;\npid {run}/nginx.pid;\nerror_log {run}/error.log;\nevents {{}}\n"
        f"http {{\n include /etc/nginx/mime.types;\n access_log off;\n"
        f" client_body_temp_path {run}/body;\n proxy_temp_path {run}/proxy;\n"
        f" fastcgi_temp_path {run}/fastcgi;\n uwsgi_temp_path {run}/uwsgi;\n"
        f" scgi_temp_path {run}/scgi;\n include {run}/site.conf;\n}}\n"
    )
    proc = subprocess.Popen([nginx, "-p", str(run), "-c", str(run / "nginx.conf")])
    try:

        def listening() -> bool:
            assert proc.poll() is None, (run / "error.log").read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, "nginx to listen")
        yield port
    finally:
        proc.terminate()
        proc.wait(HANG)


def _request(
    port: int, path: str, method: str = "GET", body: str | None = None,
    headers: dict[str, str] | None = None, source: str = "127.0.0.1",
) -> tuple[int, list[tuple[str, str]], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def _subscribe(port: int, address: str, source: str, **headers: str) -> int:
    form = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Sec-Fetch-Site": "same-origin",
        **headers,
    }
    body = urlencode({"email": address})
    return _request(port, "/subscribe", "POST", body, form, source)[0]


def test_nginx_sends_the_security_headers_on_pages_feeds_and_proxied_pages(
    tmp_path: Path,
) -> None:
    """The archive pages carry the subscribe form; nginx served them and the feeds with
    no CSP, X-Frame-Options, nosniff or Referrer-Policy."""
    for site in _site(tmp_path, []):
        for port in _nginx(tmp_path, site):
            slug = next((site.app.settings.public_dir / "themes").glob("*.xml")).stem
            paths = [
                "/feed.xml", "/atom.xml", "/feed.json", f"/themes/{slug}.xml",
                "/archive/1", "/archive/1.html", "/archive/nothing-here", "/subscribe", "/",
            ]  # fmt: skip
            for path in paths:
                status, headers, _ = _request(port, path)
                assert status == (404 if "nothing" in path else 200), path
                for name, value in SECURITY_HEADERS.items():
                    sent = [v for k, v in headers if k.lower() == name]
                    assert sent == [value], (path, name, sent)
            feed_headers = dict(_request(port, "/feed.xml")[1])
            assert feed_headers["Cache-Control"] == "max-age=300"


def test_nginx_sends_the_gz_beside_each_file_to_clients_that_accept_gzip(
    tmp_path: Path,
) -> None:
    """gzip_static: the copy publishing wrote, as it is (nothing compressed per request),
    with Vary; the plain file to a client that does not accept gzip."""
    for site in _site(tmp_path, []):
        public = site.app.settings.public_dir
        slug = next((public / "themes").glob("*.xml")).stem
        for port in _nginx(tmp_path, site):
            for path in ["/feed.xml", "/atom.xml", f"/themes/{slug}.xml", "/archive/1.html"]:
                on_disk = public / path.lstrip("/")
                status, headers, body = _request(port, path, headers={"Accept-Encoding": "gzip"})
                sent = {k.lower(): v for k, v in headers}
                assert status == 200 and sent["content-encoding"] == "gzip", path
                assert body == on_disk.with_name(on_disk.name + ".gz").read_bytes(), path
                assert "Accept-Encoding" in sent["vary"], path
                status, headers, body = _request(port, path)
                assert status == 200 and body == on_disk.read_bytes(), path
                assert "content-encoding" not in {k.lower() for k, _ in headers}, path


def test_the_subscribe_limit_counts_each_client_behind_the_trusted_proxy_only(
    tmp_path: Path,
) -> None:
    """Behind a proxy every client had the proxy's address, so the per-address limit was
    one limit for everybody; X-Forwarded-For is believed from web.trusted_proxies only."""
    for site in _site(tmp_path, [PROXY]):
        for port in _nginx(tmp_path, site):
            assert _subscribe(port, "a@example.org", "127.0.0.3") == 200
            assert _subscribe(port, "b@example.org", "127.0.0.4") == 200
            # the limit of one holds per client; a header the client adds changes nothing
            assert _subscribe(port, "c@example.org", "127.0.0.3") == 429
            forged = {"X-Forwarded-For": "198.51.100.7"}
            assert _subscribe(port, "d@example.org", "127.0.0.3", **forged) == 429
            # straight to digest serve, not through the proxy: the header is not believed
            assert _subscribe(site.port, "e@example.org", "127.0.0.1", **forged) == 200
            other = {"X-Forwarded-For": "198.51.100.8"}
            assert _subscribe(site.port, "f@example.org", "127.0.0.1", **other) == 429


def _defaults(compose: str, variable: str) -> set[str]:
    return set(re.findall(r"\$\{" + variable + r":-([^}]*)\}", compose))


def test_the_compose_file_holds_no_password_and_takes_it_from_the_env_file() -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    required = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in deploy/.env}"
    urls = re.findall(r"postgresql\+psycopg://digest:(.*?)@postgres", compose)
    assert urls == [required]
    assert re.findall(r"POSTGRES_PASSWORD: (.*)", compose) == [required]
    assert "deploy/.env" in (ROOT / "README.md").read_text()
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "deploy/.env"], check=False
    )
    assert ignored.returncode == 0, "deploy/.env (the password) must not be committed"


def _mynetworks(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """deploy/postfix/entrypoint.sh on a copy of the image's main.cf (real postconf)."""
    conf = tmp_path / "postfix"
    conf.mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "postfix" / "main.cf", conf / "main.cf")
    (conf / "master.cf").touch()
    return subprocess.run(
        [
            "bash",
            str(ROOT / "deploy" / "postfix" / "entrypoint.sh"),
            "postconf",
            "-h",
            "mynetworks",
        ],
        env={"PATH": os.environ["PATH"] + ":/usr/sbin", "MAIL_CONFIG": str(conf), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_postfix_in_the_stack_relays_for_the_stack_network_only(tmp_path: Path) -> None:
    """It relayed for every RFC 1918 host; now for the compose network less its gateway
    (the host side: any process on the host could relay otherwise)."""
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    subnets, gateways = _defaults(compose, "DIGEST_SUBNET"), _defaults(compose, "DIGEST_GATEWAY")
    assert len(subnets) == 1 and len(gateways) == 1, (subnets, gateways)
    subnet, gateway = subnets.pop(), gateways.pop()
    for line in ("STACK_SUBNET: ${DIGEST_SUBNET:-", "STACK_GATEWAY: ${DIGEST_GATEWAY:-",
                 "- subnet: ${DIGEST_SUBNET:-", "gateway: ${DIGEST_GATEWAY:-",
                 "DIGEST_WEB_TRUSTED_PROXIES: ${DIGEST_GATEWAY:-"):  # fmt: skip
        assert line in compose
    assert _mynetworks(tmp_path).stdout.split() == ["127.0.0.0/8"]
    started = _mynetworks(tmp_path, STACK_SUBNET=subnet, STACK_GATEWAY=gateway)
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["127.0.0.0/8", f"!{gateway}", subnet]
    bad = _mynetworks(tmp_path, STACK_SUBNET="10.0.0.0/8 0.0.0.0/0")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "STACK_SUBNET=10.0.0.0/8 0.0.0.0/0 is not an IPv4 network (e.g. 10.89.218.0/24)"
    )


def _tree(folder: Path) -> dict[str, tuple[str, float]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _deliver_to(where: str, subject: str) -> Path:
    """Send one message to a private Postfix ("host:port maildir"); wait until it is in."""
    address, maildir = where.split()
    host, port = address.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=HANG) as smtp:
        smtp.sendmail("ci@example.org", ["anyone@example.org"], f"Subject: {subject}\r\n\r\nhi\r\n")

    def arrived() -> Path | None:
        for path in (Path(maildir) / "new").glob("*"):
            if f"Subject: {subject}".encode() in path.read_bytes():
                return path
        return None

    return wait_for(arrived, f"{subject!r} in {maildir}")


def test_a_second_test_postfix_runs_beside_the_first_and_nothing_in_etc_postfix_changes() -> None:
    """.ci/postfix.sh said it configured nothing under /etc/postfix but appended
    alternate_config_directories to its main.cf, and a second instance's line overrode the
    first's. It needs none: root runs `postfix -c DIR` on any folder."""
    first = os.environ.get("DIGEST_TEST_POSTFIX", "")
    if not first:
        pytest.fail("DIGEST_TEST_POSTFIX is not set: run the tests through .ci/run (make test)")
    etc = _tree(Path("/etc/postfix"))
    folder = Path(tempfile.mkdtemp(prefix="digest-postfix-", dir="/var/tmp"))  # maillog: /var
    folder.chmod(0o755)  # Postfix's daemons run as postfix and nobody
    env = dict(
        os.environ, DIGEST_TEST_POSTFIX_DIR=str(folder), DIGEST_TEST_POSTFIX_PORT=str(free_port())
    )
    try:
        started = subprocess.run(
            ["bash", str(ROOT / ".ci" / "postfix.sh")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG,
        )
        assert started.returncode == 0, started.stderr
        second = started.stdout.strip()
        assert second == f"127.0.0.1:{env['DIGEST_TEST_POSTFIX_PORT']} {folder}/mail/maildir"
        assert _deliver_to(second, f"second {folder.name}")
        assert _deliver_to(first, f"first {folder.name}")
        assert _tree(Path("/etc/postfix")) == etc
    finally:
        subprocess.run(["postfix", "-c", str(folder / "etc"), "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_test_runs_started_together_share_one_test_postfix_without_restarting_it() -> None:
    """Three test runs on one machine each run .ci/postfix.sh: each is told where the
    instance listens, and one already running with the same configuration is not
    restarted under another run's tests (found by five CI runs at once: two starts at
    the same moment failed, and that run's tests had no Postfix)."""
    folder = Path(tempfile.mkdtemp(prefix="digest-postfix-", dir="/var/tmp"))  # maillog: /var
    folder.chmod(0o755)  # Postfix's daemons run as postfix and nobody
    port = str(free_port())
    env = dict(os.environ, DIGEST_TEST_POSTFIX_DIR=str(folder), DIGEST_TEST_POSTFIX_PORT=port)
    script = ["bash", str(ROOT / ".ci" / "postfix.sh")]
    expected = f"127.0.0.1:{port} {folder}/mail/maildir"
    master = folder / "queue" / "pid" / "master.pid"
    try:
        first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=HANG)
        assert (first.returncode, first.stdout.strip()) == (0, expected), first.stderr
        running = master.read_text().strip()
        together = [
            subprocess.Popen(script, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)
        ]
        answers = [(p.communicate(timeout=HANG)[0].strip(), p.returncode) for p in together]
        assert answers == [(expected, 0)] * 3
        assert master.read_text().strip() == running  # the same master: not restarted
        assert _deliver_to(expected, f"together {folder.name}")
    finally:
        subprocess.run(["postfix", "-c", str(folder / "etc"), "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.postgres
def test_test_runs_started_together_each_get_the_test_postgresql() -> None:
    """Test runs on one machine each run .ci/postgres.sh: each is told the URL, and no
    process outlives the script holding its lock (found by three CI runs at once: the
    server that the first run's script started inherited the lock's descriptor, and the
    other two runs waited for it for ever)."""
    if os.geteuid() != 0 or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        pytest.skip("needs root and the PostgreSQL that .ci/postgres.sh installs")
    script = ["bash", str(ROOT / ".ci" / "postgres.sh")]
    url = "postgresql+psycopg://digest_test:digest_test@127.0.0.1:5432/postgres"
    together = [
        subprocess.Popen(script, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(2)
    ]
    try:
        answers = [(p.communicate(timeout=HANG)[0].strip(), p.returncode) for p in together]
    finally:
        for p in together:
            p.kill()
    assert answers == [(url, 0)] * 2
    lock = ["flock", "-w", str(HANG), "/var/tmp/digest-postgres.lock", "true"]
    assert subprocess.run(lock, check=False).returncode == 0, "the lock is held by a server"


def _open_state(url: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    engine = create_engine(url)
    barrier.wait(60)
    try:
        db.upgrade(engine)
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_services_starting_together_on_an_empty_postgresql_all_open_it() -> None:
    """`compose up` starts the daemon, the web server and the workers at once on an empty
    database: each creates or migrates the schema, one at a time (found by running the
    stack: without the lock, all but one failed on the duplicate alembic_version table)."""
    ctx = multiprocessing.get_context("spawn")
    with new_pg_database() as url:
        barrier = ctx.Barrier(4)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_open_state, args=(url, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        assert outcomes == ["ok"] * 4
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        finally:
            engine.dispose()
        assert len(versions) == 1


@pytest.mark.postgres
def test_a_lock_whose_server_connection_died_is_left_without_an_error(tmp_path: Path) -> None:
    """Stopping the compose stack, podman-compose stopped PostgreSQL before the daemon,
    which then ended with a traceback (unlocking over a dead connection). The lock died
    with the connection; leaving it must not raise, and it can be taken again."""
    with new_pg_database() as url:
        engine = create_engine(url)
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with locks.hold(locks.DAEMON, engine, tmp_path):
                with admin.connect() as conn:
                    killed = conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND objid = :k AND granted"
                        ),
                        {"k": locks.DAEMON.pg_key},
                    ).all()
                assert killed == [(True,)]
            with locks.hold(locks.DAEMON, engine, tmp_path):
                pass
        finally:
            engine.dispose()
            admin.dispose()
