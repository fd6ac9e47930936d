"""The tutorial's Flask app (Flask from PyPI, installed with `pip install --user`).

`python app.py` serves JSON on port 5000; `python app.py --self-test` starts the server on a
free loopback port, asks it once, prints the answer and exits, so a script can check the image
without a network. The answer says where Flask was imported from.
"""

import os
import sys
import threading
import urllib.request
from importlib.metadata import version

import flask
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(
        message="Hello from a multi-stage build",
        python=sys.version.split()[0],
        flask=version("flask"),
        flask_from=os.path.dirname(flask.__file__),
    )


def self_test():
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/") as response:
        print(response.read().decode())
    server.shutdown()


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        app.run(host="0.0.0.0", port=5000)
