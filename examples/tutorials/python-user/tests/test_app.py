"""The tutorial's test stage: the app answers / with its greeting."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import app  # noqa: E402


def test_index_greets():
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.get_json()["message"] == "Hello from a multi-stage build"


def test_flask_comes_from_the_user_site():
    response = app.test_client().get("/")
    assert "/root/.local/" in response.get_json()["flask_from"]
