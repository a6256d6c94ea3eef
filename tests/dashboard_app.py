"""Opening the real dashboard in Streamlit's AppTest, and waiting on real background jobs, for the dashboard tests."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io
from streamlit.testing.v1 import AppTest

from engine import api

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"
PAGES = ("overview", "run", "detections", "history", "machines", "compare", "recommend", "profiles", "share")
HEAVY_MODULES = ("torch", "tensorflow", "ultralytics", "onnxruntime", "openvino")
APP_TIMEOUT_S = 60


def open_page(db: Path, page: str = "overview", query_params: dict | None = None) -> AppTest:
    """A fresh browser session on one page, with the sidebar's database set to db."""
    app = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    app.session_state["db_path"] = str(db)
    for key, value in (query_params or {}).items():
        app.query_params[key] = value
    app.run()
    if page != "overview":
        app.switch_page(f"pages/views/{page}.py").run()
    return app


def text_of(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def table_with(app: AppTest, column: str):
    """The page's first table that has the column: a page may draw others before it (the Machines page's cache)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def elements(app: AppTest, kind: str) -> list:
    return list(app.get(kind))


def figures(app: AppTest) -> list[go.Figure]:
    """The page's Plotly charts, decoded (Plotly sends arrays as typed binary data)."""
    return [plotly.io.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def values_of(array) -> list:
    """A trace's x or y: Plotly 6+ serialises numeric arrays as {"bdata": base64, "dtype": ...}."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def wait_for_job(
    job_id: str, until=lambda status: status["state"] not in ("queued", "running"), timeout_s: float = 300
) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = api.job_status(job_id)
        if until(status):
            return status
        time.sleep(0.3)
    raise AssertionError(
        f"job {job_id} did not get there in {timeout_s} s: {api.job_status(job_id)}\n{api.log_tail(job_id)}"
    )
