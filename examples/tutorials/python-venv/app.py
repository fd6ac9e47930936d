"""The tutorial's web app, on the standard library instead of Flask.

`python app.py` serves JSON on port 5000 like the tutorial's app; `python app.py --self-test`
starts the server on a free loopback port, asks it once, prints the answer and exits, so a
script can check the image without a network.
"""

import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(
            {
                "message": "Hello from a multi-stage build",
                "python": sys.version.split()[0],
                "venv": sys.prefix,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def self_test():
    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/") as response:
        print(response.read().decode())
    server.shutdown()


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        HTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
