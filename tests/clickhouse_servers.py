"""Private, throw-away ClickHouse 18.16 servers (Debian's clickhouse-server) for the store tests.

Each server runs from its own temporary folder on free loopback ports, with
the stock config copied and pointed there (recipe:
/work/shared/recipes/clickhouse.md), and is polled until it accepts
connections — never a blind sleep. Two servers share one cluster definition
(``two_shards``, one shard each), so a ``Distributed`` table over them is a
real two-shard cluster. Servers are started once per test session; tests
isolate themselves by creating a database with a fresh name.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import free_port, wait_for_port

SRC = Path("/etc/clickhouse-server")
SERVER_BIN = Path("/usr/sbin/clickhouse-server")
CLUSTER = "two_shards"


def available() -> str | None:
    """None when Debian's clickhouse-server is installed, else what is missing."""
    for path in (SERVER_BIN, SRC / "config.xml", SRC / "users.xml"):
        if not path.exists():
            return f"{path} not found (apt-get install clickhouse-server)"
    return None


def _write_config(d: Path, http: int, tcp: int, inter: int, shard_ports: list[int]) -> None:
    users = ET.parse(SRC / "users.xml")
    for el in users.getroot().iter():
        el.attrib.pop("incl", None)
    users.write(d / "users.xml")
    tree = ET.parse(SRC / "config.xml")
    root = tree.getroot()
    # An empty <zookeeper/> makes the first ON CLUSTER query crash the server: remove it outright.
    for tag in ("listen_host", "zookeeper", "distributed_ddl", "macros"):
        for el in root.findall(tag):
            root.remove(el)
    values = {"logger/level": "warning", "logger/log": d / "log/server.log", "logger/errorlog": d / "log/server.err.log",
              "http_port": http, "tcp_port": tcp, "interserver_http_port": inter, "listen_host": "127.0.0.1",
              "path": f"{d}/data/", "tmp_path": f"{d}/tmp/", "user_files_path": f"{d}/user_files/",
              "format_schema_path": f"{d}/format_schemas/", "users_config": d / "users.xml"}
    for tag, text in values.items():
        el = root.find(tag)
        if el is None:
            el = ET.SubElement(root, tag)
        el.text = str(text)
    servers = root.find("remote_servers")
    if servers is None:
        servers = ET.SubElement(root, "remote_servers")
    for c in list(servers):
        servers.remove(c)  # the stock sample clusters point at localhost:9000
    cluster = ET.SubElement(servers, CLUSTER)
    for port in shard_ports:
        replica = ET.SubElement(ET.SubElement(cluster, "shard"), "replica")
        ET.SubElement(replica, "host").text = "127.0.0.1"
        ET.SubElement(replica, "port").text = str(port)
    for el in root.iter():
        el.attrib.pop("incl", None)
    tree.write(d / "config.xml")


@dataclass
class Server:
    dir: Path
    tcp: int
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.tcp}"

    def url(self, database: str) -> str:
        return f"clickhouse://default@127.0.0.1:{self.tcp}/{database}"

    def start(self) -> None:
        log = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 (kept open for the server's lifetime)
        self.proc = subprocess.Popen([str(SERVER_BIN), f"--config-file={self.dir}/config.xml"], cwd=self.dir,
                                     stdout=log, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", self.tcp, timeout=60, process=self.proc)

    def stop(self) -> None:
        """SIGTERM to our own server process only, waited for; killed if it will not go."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass
class Cluster:
    """Two servers, shard 1 and shard 2 of ``two_shards``; ``servers[0]`` is also the one clients connect to."""

    servers: list[Server] = field(default_factory=list)

    @classmethod
    def start(cls) -> Cluster:
        ports = [(free_port(), free_port(), free_port()) for _ in range(2)]
        cluster = cls()
        for http, tcp, inter in ports:
            d = Path(tempfile.mkdtemp(prefix="erasure-chsrv-"))
            _write_config(d, http, tcp, inter, [p[1] for p in ports])
            cluster.servers.append(Server(dir=d, tcp=tcp))
        try:
            for s in cluster.servers:
                s.start()
        except Exception:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
            shutil.rmtree(s.dir, ignore_errors=True)
