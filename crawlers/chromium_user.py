"""Start Chromium for the browser resolver: its own process group, dying with its parent,
and as an unprivileged user when Vigie runs as root, so its sandbox can stay on.

Crawl stage, run as a script (standard library only, ``python -I``) by the launcher that
``crawlers.browser`` writes for Playwright's ``executable_path``. Chromium refuses to
start its sandbox as root (it would need ``--no-sandbox``, which turns the sandbox off
for hostile JavaScript); this script hands the temporary profile Playwright created to
the unprivileged user and drops every privilege (groups, gid, uid; no way back). In
every case it starts a new session (the whole Chromium tree is one process group the
pool can kill at once), asks the kernel to kill Chromium if Playwright's driver dies
(after the change of user, which clears that setting), and writes the process id where
the pool reads it; then it executes Chromium with Playwright's arguments; the pipes Playwright
talks over (file descriptors 3 and 4) are inherited.

Usage: ``python -I chromium_user.py PIDFILE USER|- CHROMIUM [ARGS...]``.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    pidfile, user, chromium, args = argv[1], argv[2], argv[3], argv[4:]
    parent = os.getppid()
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader (Playwright starts the browser detached): same result
    with open(pidfile, "w", encoding="ascii") as f:  # the pid survives exec; written while we may
        f.write(str(os.getpid()))
    if user != "-":
        pw = pwd.getpwnam(user)
        for arg in args:
            if arg.startswith("--user-data-dir="):
                profile = arg.split("=", 1)[1]
                for root, _dirs, files in os.walk(profile):
                    os.chown(root, pw.pw_uid, pw.pw_gid)
                    for name in files:
                        os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
                # Chromium writes its NSS database and crash reports under $HOME.
                os.environ["HOME"] = profile
        os.environ.pop("XDG_RUNTIME_DIR", None)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("could not drop root privileges")
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the pool still kills the group on close
    if os.getppid() != parent:
        os._exit(1)  # the driver died before the request took effect
    os.execv(chromium, [chromium, *args])


if __name__ == "__main__":
    main(sys.argv)
