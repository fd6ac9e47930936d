# A small web server for distill's `ADD <url>` tests: HTTPS (with the certificate and key
# given) and plain HTTP on 127.0.0.1, both on free ports, printed as "HTTPS_PORT HTTP_PORT".
# Every request is appended to LOG as "METHOD PATH IF-NONE-MATCH" so a test can count them.
# The plain HTTP port is also a forward proxy (CONNECT) that sends every host to 127.0.0.1.
#
# usage: python3 add_url_server.py CERT KEY LOG [BIG_FILE]
import http.server
import os
import shutil
import socket
import ssl
import sys
import threading

CERT, KEY, LOG = sys.argv[1:4]
BIG = sys.argv[4] if len(sys.argv) > 4 else None
LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"
ports = {}
log_lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        tags = self.headers.get("If-None-Match", "-")
        with log_lock, open(LOG, "a") as log:
            log.write(f"GET {self.path} {tags}\n")
        if self.path == "/files/greeting.txt":
            headers = [("Last-Modified", LAST_MODIFIED), ("ETag", '"v1"')]
            if '"v1"' in tags:
                self.answer(304, headers=headers)
            else:
                self.answer(200, b"hello", headers)
        elif self.path == "/no-date.txt":
            self.answer(200, b"undated")
        elif self.path == "/to-https":
            target = f"https://127.0.0.1:{ports['https']}/files/greeting.txt"
            self.answer(302, headers=[("Location", target)])
        elif self.path == "/big" and BIG:
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(BIG)))
            self.end_headers()
            with open(BIG, "rb") as source:
                shutil.copyfileobj(source, self.wfile, 1 << 20)
        else:
            self.answer(404, b"not found\n")


    def do_CONNECT(self):
        # A forward proxy's tunnel: every host name is this machine.
        with log_lock, open(LOG, "a") as log:
            log.write(f"CONNECT {self.path} -\n")
        port = int(self.path.rsplit(":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        self.send_response(200, "Connection established")
        self.end_headers()

        def pump(source, target):
            try:
                while data := source.recv(1 << 16):
                    target.sendall(data)
            except OSError:
                pass
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        back = threading.Thread(target=pump, args=(upstream, self.connection), daemon=True)
        back.start()
        pump(self.connection, upstream)
        back.join()
        upstream.close()
        self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that refuses our certificate is part of the tests: stay quiet.
        pass


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
secure = Server(("127.0.0.1", 0), Handler)
secure.socket = context.wrap_socket(secure.socket, server_side=True)
plain = Server(("127.0.0.1", 0), Handler)
ports["https"] = secure.server_address[1]
ports["http"] = plain.server_address[1]
threading.Thread(target=plain.serve_forever, daemon=True).start()
print(ports["https"], ports["http"], flush=True)
secure.serve_forever()
