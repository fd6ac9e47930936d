"""The tutorial's microblog, reduced to one page: Flask, served by gunicorn (both from PyPI)."""

import os
import pwd

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(
        message="Hello from microblog",
        user=pwd.getpwuid(os.getuid()).pw_name,
        home=os.environ.get("HOME"),
        context=os.environ.get("CONTEXT"),
    )
