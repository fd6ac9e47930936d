# app.py
"""The tutorial's Flask app; gunicorn serves it on port 5000 (the image's CMD).

`python app.py --self-test` starts the image's own command (gunicorn, found on PATH in
/home/appuser/.local/bin, two workers) on a loopback port, asks / and /health, prints the
answers and who the app runs as, then stops gunicorn: a check of the image without a network.
"""

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

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def hello():
    return jsonify({"message": "Hello from Docker!", "version": "1.0"})


@app.route("/health")
def health():
    return jsonify({"status": "healthy"})


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url) as response:
                return response.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def self_test():
    port = free_port()
    server = subprocess.Popen(
        ["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "app:app"],
        stderr=subprocess.DEVNULL,
    )
    try:
        print(fetch(f"http://127.0.0.1:{port}/", 30))
        print(fetch(f"http://127.0.0.1:{port}/health", 30))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "whoami": pwd.getpwuid(os.getuid()).pw_name,
                "gunicorn": shutil.which("gunicorn"),
                "flask": sys.modules["flask"].__file__,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        app.run(host="0.0.0.0", port=5000)
