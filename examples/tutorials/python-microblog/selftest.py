"""Checks the image the way `docker run` would use it, without a network.

Starts ./boot.sh (gunicorn from /usr/local/bin, copied from the builder), waits for it to
answer on port 5000, prints the answer and what the image is made of (who runs the app, who
owns its files, where gunicorn and Flask come from), then stops the server.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import flask


def fetch(url, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main():
    server = subprocess.Popen(["./boot.sh"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        answer = fetch("http://127.0.0.1:5000/", 30)
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    print(answer.strip())
    print(
        json.dumps(
            {
                "gunicorn": shutil.which("gunicorn"),
                "flask": os.path.dirname(flask.__file__),
                "microblog.py owner": pwd.getpwuid(os.stat("microblog.py").st_uid).pw_name,
                "workdir": os.getcwd(),
                "workdir owner": pwd.getpwuid(os.stat(".").st_uid).pw_name,
            },
            indent=1,
        )
    )
    if server.returncode not in (0, -signal.SIGTERM):
        sys.stderr.write(errors.decode())
        sys.exit(f"gunicorn exited with {server.returncode}")


if __name__ == "__main__":
    main()
