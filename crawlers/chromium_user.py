"""Start Chromium as an unprivileged user, so its sandbox can stay on when Vigie runs as root.

Crawl stage, run as a script (standard library only) by the launcher that
``crawlers.browser`` writes for Playwright's ``executable_path`` when the crawler runs
as root. Chromium refuses to start its sandbox as root (it would need
``--no-sandbox``, which turns the sandbox off for hostile JavaScript). This script hands
the temporary profile Playwright created to the unprivileged user, drops every
privilege (groups, gid, uid; no way back) and then executes Chromium with Playwright's
arguments; the pipes Playwright talks over (file descriptors 3 and 4) are inherited.

Usage: ``python chromium_user.py USER CHROMIUM [ARGS...]``.
"""

from __future__ import annotations

import os
import pwd
import sys


def main(argv: list[str]) -> None:
    user, chromium, args = argv[1], argv[2], argv[3:]
    pw = pwd.getpwnam(user)
    for arg in args:
        if arg.startswith("--user-data-dir="):
            profile = arg.split("=", 1)[1]
            for root, dirs, files in os.walk(profile):
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
    os.execv(chromium, [chromium, *args])


if __name__ == "__main__":
    main(sys.argv)
