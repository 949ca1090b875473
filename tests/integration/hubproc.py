"""Start a real `mailward serve` process on free loopback ports for integration tests."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAILWARD = str(Path(sys.executable).with_name("mailward"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_zones() -> dict[str, Any]:
    """The examples' DNS zones and a free-mail provider whose SPF allows the tests' loopback
    clients (a stranger who authenticates as its own outside domain)."""
    zones: dict[str, Any] = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    zones["freemail.test"] = [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}]
    return zones


def unverified_tls() -> ssl.SSLContext:
    """A client TLS context for the hub's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def stop_controller(controller: Any) -> None:
    """Stop an aiosmtpd Controller and close the event loop it made (it leaves it open)."""
    controller.stop()
    if not controller.loop.is_closed():
        controller.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class HubProcess:
    """A running hub: its ports, data directory and log file."""

    workdir: Path
    zones: dict[str, object]
    extra_config: str = ""
    inbound_port: int = field(default_factory=free_port)
    submission_port: int = field(default_factory=free_port)
    submission_tls_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    workers: int = 1  # most tests look at one process; test_workers and the crash test use more
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "var"

    @property
    def log_path(self) -> Path:
        return self.workdir / "hub.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mailward.toml"

    def write_config(self) -> None:
        (self.workdir / "zones.yaml").write_text(yaml.safe_dump(self.zones))
        self.config_path.write_text(
            f"""
[site]
authserv_id = "mx.ourcorp.example"
domains = ["ourcorp.example"]
[server]
data_dir = "{self.data_dir}"
workers = {self.workers}
[dns]
zone_file = "{self.workdir / 'zones.yaml'}"
[smtp]
hostname = "mx.ourcorp.example"
inbound_listen = "127.0.0.1:{self.inbound_port}"
submission_listen = "127.0.0.1:{self.submission_port}"
submission_tls_listen = "127.0.0.1:{self.submission_tls_port}"
[web]
listen = "127.0.0.1:{self.web_port}"
{self.extra_config}
"""
        )

    def add_user(self, name: str, address: str, password: str) -> None:
        """Create a submission account through the CLI (writes the config first)."""
        self.write_config()
        subprocess.run([MAILWARD, "users", "add", name, "--address", address,
                        "--password-stdin", "--config", str(self.config_path)],
                       input=password + "\n", text=True, check=True, capture_output=True)

    def submit(self, user: str, password: str, mail_from: str, rcpts: list[str],
               message: bytes | str) -> None:
        """Log in on the submission port (STARTTLS) and send one message."""
        with smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30) as client:
            client.starttls(context=unverified_tls())
            client.login(user, password)
            client.sendmail(mail_from, rcpts, message)

    def start(self) -> HubProcess:
        self.write_config()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [MAILWARD, "serve", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            wait_port(self.inbound_port, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"hub did not start:\n{self.log()}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def maildir(self, address: str) -> list[bytes]:
        new = self.data_dir / "maildir" / address.lower() / "new"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            files = sorted(new.glob("*")) if new.exists() else []
            if files:
                return [p.read_bytes() for p in files]
            time.sleep(0.05)
        return []
