"""A bundle written before the run's records were typed (tests/fixtures/run-before-typed-records.zip, made by the
engine at 9195bc7) imports into today's schema with the results_summary it had where it was made."""

import json
from pathlib import Path

from engine import api, store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def summary_records(frame) -> list[dict]:
    return json.loads(frame.sort_values("result_id").to_json(orient="records", date_format="iso"))


def test_an_old_bundle_imports_with_an_identical_results_summary(tmp_path):
    db = str(tmp_path / "results.duckdb")
    assert api.import_bundle(db, str(FIXTURES / "run-before-typed-records.zip")) == "imported"
    expected = json.loads((FIXTURES / "run-before-typed-records.summary.json").read_text())
    assert summary_records(store.results_summary(db)) == expected
    assert api.import_bundle(db, str(FIXTURES / "run-before-typed-records.zip")) == "already present"
