"""The tutorial's Flask app, with pandas and numpy (all from PyPI, in the builder's venv).

`gunicorn app:app` serves it on port 5000 as the tutorial's CMD does; `python app.py
--self-test` starts it on a free loopback port, asks it once, prints the answer and exits, so
a script can check the image without a network. The answer says which venv the packages come
from.
"""

import sys
import threading
import urllib.request

import numpy as np
import pandas as pd
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def home():
    # Démonstration que pandas/numpy fonctionnent
    df = pd.DataFrame({"a": [1, 2, 3]})
    arr = np.array([1, 2, 3])

    return jsonify(
        {
            "message": "Hello from multi-stage Python!",
            "pandas_sum": int(df["a"].sum()),
            "numpy_sum": int(arr.sum()),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "venv": sys.prefix,
        }
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
