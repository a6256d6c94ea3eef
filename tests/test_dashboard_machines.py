"""Comparing machines: History normalised by a reference machine and runtime; the fastest machine for a model."""

import fcntl
import sys

import pytest

from tests.conftest import ROOT
from tests.dashboard_app import figures, open_page, table_with, text_of, values_of

sys.path.insert(0, str(ROOT / "benchmarks"))
from history_scale import generate  # noqa: E402  (the benchmark's generator: a history from 3 machines)

from tests.rows import flat_stats, result_record, run_row


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("fleet") / "results.duckdb"
    generate(db, runs=40, machines=3)
    return db


def test_history_normalises_machines_by_a_reference(fleet_db):
    app = open_page(fleet_db, "history")
    assert not app.exception
    app.selectbox(key="reference_machine").set_value("machine-1").run()
    reference_variant = app.selectbox(key="reference_variant").value
    normalised = [f for f in figures(app) if f.layout.title.text and "relative to machine-1" in f.layout.title.text]
    assert normalised, "the normalised chart is drawn"
    trace = next(t for t in normalised[0].data if t.name == "machine-1")
    ratios = dict(zip(trace.x, values_of(trace.y)))
    assert ratios[reference_variant] == pytest.approx(1.0)


def test_machines_page_names_the_fastest_machine_and_runtime_with_evidence(fleet_db):
    from engine import api

    app = open_page(fleet_db, "machines")
    assert not app.exception
    summary = api.results_summary(str(fleet_db))
    best = summary[summary["model"] == app.selectbox(key="fastest_model").value].sort_values("total_ms").iloc[0]
    text = text_of(app.markdown)
    assert f"**{best['machine_label']}** with **{best['runtime']}:{best['precision']}**" in text
    assert f"{best['total_ms']:.2f} ms" in text and best["run_id"] in text


def test_a_result_too_short_for_an_interval_says_so_instead_of_nan(tmp_path):
    from engine import store
    from engine.machine import fingerprint

    db = tmp_path / "results.duckdb"
    machine = fingerprint()
    store.ensure_schema(db)
    store.upsert_machine(db, machine)
    store.insert_run(db, run_row("short", machine_id=machine["machine_id"], model_sha256="x"))
    three = flat_stats(3.0, 3)  # 3 iterations: too few for a 95% interval of the median
    store.insert_result(db, result_record("r", "short", stats={"infer": three, "total": three}))
    store.finish_run(db, "short", "completed")
    app = open_page(db, "machines")
    assert not app.exception
    text = text_of(app.markdown)
    assert "no 95% interval: too few iterations" in text and "nan" not in text


def test_a_machine_card_names_the_other_labels_its_runs_carry(tmp_path):
    """One machine, runs labelled 'vm' then 'lab-box': History shows both names, so the card must too."""
    from engine import store
    from engine.machine import fingerprint

    db = tmp_path / "results.duckdb"
    machine = fingerprint()
    store.ensure_schema(db)
    for run_id, label in [("first", "vm"), ("second", "lab-box")]:
        store.upsert_machine(db, {**machine, "label": label})
        store.insert_run(db, run_row(run_id, machine_id=machine["machine_id"], machine_label=label, model_sha256="x"))
        store.finish_run(db, run_id, "failed")
    app = open_page(db, "machines")
    assert not app.exception
    card_title = [header.value for header in app.subheader if "computer" in header.value]
    assert len(card_title) == 1
    shown, other = ("lab-box", "vm") if "lab-box" in card_title[0] else ("vm", "lab-box")
    assert f"**{other}**" in text_of(app.caption) and f"**{shown}**" not in text_of(app.caption)


CPUINFO = """processor\t: {cpu}
vendor_id\t: AuthenticAMD
cpu family\t: {family}
model\t\t: {model}
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16
"""


def test_two_cpu_generations_behind_one_brand_string_are_two_machines(tmp_path, monkeypatch):
    """A hypervisor names a Zen 4 and a Zen 5 VM 'AMD EPYC' with the same flags, yet their peak rates differ
    twofold: sharing one machine id, the second would be measured against the first one's stored peak and
    history."""
    from engine import machine as machine_module
    from engine import store

    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    ids = []
    for family, model in [(25, 17), (26, 2)]:
        cpuinfo = tmp_path / f"cpuinfo-{family}"
        cpuinfo.write_text("\n".join(CPUINFO.format(cpu=cpu, family=family, model=model) for cpu in range(2)))
        monkeypatch.setattr(machine_module, "CPUINFO", cpuinfo)
        machine = machine_module.fingerprint("vm")
        assert machine["cpu_model"] == "AMD EPYC" and machine["cpu_id"] == f"family {family} model {model} stepping 1"
        ids.append(machine["machine_id"])
        store.upsert_machine(db, machine)
    assert ids[0] != ids[1]
    app = open_page(db, "machines")
    assert not app.exception
    cards = sorted(header.value for header in app.subheader if "computer" in header.value)
    assert cards == sorted(f":material/computer: vm ({machine_id[:8]})" for machine_id in ids)
    captions = text_of(app.caption)
    assert "AMD EPYC (family 25 model 17 stepping 1)" in captions
    assert "AMD EPYC (family 26 model 2 stepping 1)" in captions
    picker = app.sidebar.multiselect[0]
    assert sorted(picker.options) == sorted(f"vm · AMD EPYC ({machine_id[:8]})" for machine_id in ids)


def test_machines_page_shows_the_cache_and_removes_only_what_no_run_can_use(fleet_db, tmp_path, monkeypatch):
    cache, lock = tmp_path / "cache", tmp_path / "lock"
    monkeypatch.setenv("YOLO_BENCH_CACHE", str(cache))
    monkeypatch.setenv("YOLO_BENCH_LOCK", str(lock))
    unfinished = cache / "exports" / ("2" * 24)  # an export a stopped run left: no done.json
    unfinished.mkdir(parents=True)
    (unfinished / "model.pt").write_bytes(b"w" * 2**20)
    model = cache / "models" / "yolov8n.pt"
    model.parent.mkdir()
    model.write_bytes(b"weights")

    app = open_page(fleet_db, "machines")
    assert not app.exception
    table = table_with(app, "removable").set_index("kind")
    assert (table.loc["exports", "removable"], table.loc["models", "removable"]) == (1, 0)
    assert "1 unfinished" in table.loc["exports", "why"]

    with open(lock, "w") as held:  # a benchmark measuring now
        fcntl.flock(held, fcntl.LOCK_EX)
        app.button(key="prune_cache").click().run()
    assert "A benchmark is measuring on this machine now" in text_of(app.warning)
    assert unfinished.exists()

    app.button(key="prune_cache").click().run()
    assert not app.exception
    assert "Removed 1 entry, 1.0 MB." in text_of(app.success)
    assert not unfinished.exists() and model.exists()
    assert "Nothing in it is stale" in text_of(app.caption)
