"""An nginx of the tests' own: Debian's `nginx` (`.ci/run` installs it), run as a child
process (never the system's service) on 127.0.0.1 and a free port, with its
configuration, logs, pid file and temporary files in a folder of its own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import TIMEOUT, free_port

__all__ = ["NginxProxy", "find_nginx", "start_nginx"]


def find_nginx() -> str | None:
    """Debian puts nginx in /usr/sbin, which a user's PATH may not hold."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


# Around a site's configuration (what /etc/nginx/conf.d/*.conf holds, inside http { }):
# every path nginx would write under /var in the folder instead. The pid file and
# `daemon off` come from the command line.
MAIN = """\
worker_processes 1;
error_log stderr notice;
events {{
    worker_connections 1024;
}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

{site}
}}
"""


class NginxProxy:
    """nginx serving a site's configuration (what goes inside `http { }`) that listens
    on 127.0.0.1 and `self.port`."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="runtime-nginx-"))
        self.folder.chmod(0o755)  # the workers run as nobody when the master is root
        self.port = free_port()
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text() if path.exists() else ""

    def start(self, site: str) -> None:
        """Started, and accepting: the master binds its ports before it starts its
        workers, and says so in its log (read here as it comes, to the end)."""
        config = self.folder / "nginx.conf"
        config.write_text(MAIN.format(folder=self.folder, site=site))
        process = subprocess.Popen(
            [
                self.binary,
                *("-c", str(config), "-p", str(self.folder), "-e", "stderr"),
                *("-g", f"daemon off; pid {self.folder / 'nginx.pid'};"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.log.append(line)
                if "start worker processes" in line:
                    ready.set()
            ready.set()  # it ended: the check below tells

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        self._process = process
        if not ready.wait(TIMEOUT * 2) or process.poll() is not None:
            self.stop()
            raise RuntimeError(f"nginx did not start on port {self.port}: {''.join(self.log)}")

    def stop(self) -> None:
        """A fast shutdown (SIGTERM): open connections are cut."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(TIMEOUT * 2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(TIMEOUT)
            self._reader.join(TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_nginx(site: Callable[[int], str]) -> NginxProxy:
    """nginx serving `site(port)`, a configuration that listens on `port`."""
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    proxy = NginxProxy(binary)
    try:
        proxy.start(site(proxy.port))
    except BaseException:
        proxy.close()
        raise
    return proxy
