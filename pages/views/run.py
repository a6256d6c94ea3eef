"""Run: choose model, images, runtimes and settings; the engine measures in a background process."""

import streamlit as st

from dashboard import data, jobs, ui
from engine import api
from engine.api import (
    MAX_BATCH,
    MAX_IMGSZ,
    MAX_IN_FLIGHT,
    MAX_ITERS,
    MAX_MIN_DURATION_S,
    MAX_TIMEOUT_S,
    MAX_WARMUP,
    MIN_IMGSZ,
    MODES,
    BenchError,
    RunConfig,
)

BATCH_CHOICES = [2**i for i in range(MAX_BATCH.bit_length()) if 2**i <= MAX_BATCH]  # 1, 2, 4, ... MAX_BATCH
DEFAULTS = RunConfig()  # every default and limit on this page is the engine's (engine/config.py)
PROFILE_CALLS = 10  # the Profile checkbox's calls: `run --profile N` chooses

st.title("Run a benchmark")
db = ui.current_db()
job_id = jobs.followed_job()
if job_id:
    jobs.show_job(job_id)

st.subheader("Start another run" if job_id else "New run")
st.caption(
    f"Results go to `{db}` (change it in the sidebar). A run started while another one measures waits "
    "in the queue and starts when that one ends."
)
infos = data.runtimes()
with st.container(border=True):
    model_column, images_column = st.columns(2)
    with model_column:
        model_source = st.radio(
            "Model", ["Default (yolov8n.pt)", "A local file", "Upload a model"], horizontal=True, key="model_source"
        )
        model_file, model_upload = "", None
        if model_source == "A local file":
            model_file = st.text_input("Path to a .pt, .onnx or .yaml model", key="model_path")
        elif model_source == "Upload a model":
            trust_pt = st.toggle(
                "Trust uploaded .pt files (they run code when loaded)",
                value=False,
                key="trust_pt",
                help="A .pt checkpoint is a Python pickle: loading it runs whatever "
                "it contains, on this machine. Switch this on only for files you would run as a "
                "program. ONNX files are data and are always accepted.",
            )
            model_upload = st.file_uploader(
                "Detection model", type=["onnx", "pt"] if trust_pt else ["onnx"], key="model_upload"
            )
    with images_column:
        images_source = st.radio(
            "Images", ["Shipped samples (bus.jpg, zidane.jpg)", "Upload images"], horizontal=True, key="images_source"
        )
        image_uploads = []
        if images_source == "Upload images":
            image_uploads = st.file_uploader(
                "Images",
                type=[suffix[1:] for suffix in api.IMAGE_SUFFIXES],
                accept_multiple_files=True,
                key="image_uploads",
            )

    st.markdown("**Runtimes**")
    columns = st.columns(3)
    for index, info in enumerate(infos):
        with columns[index % 3]:
            st.checkbox(
                info.name,
                value=info.available and info.name in jobs.QUICK_RUNTIMES,
                disabled=not info.available,
                key=f"runtime-{info.name}",
                help=info.description,
            )
            if not info.available:
                st.caption(f":red[unavailable: {info.reason}]")
            else:
                not_run = f" · :gray[exported and stored, not run: {info.export_only}]" if info.export_only else ""
                st.caption(f"precisions: {', '.join(info.precisions)}{not_run}")
    offered = list(dict.fromkeys(p for info in infos for p in info.precisions))
    precision_column, batch_column, mode_column = st.columns(3)
    precisions = precision_column.multiselect(
        "Precisions",
        offered,
        default=["fp32"],
        key="precisions",
        help="Each runtime measures the chosen precisions it offers.",
    )
    batch_sizes = batch_column.multiselect("Batch sizes", BATCH_CHOICES, default=[1], key="batch_sizes")
    modes = mode_column.multiselect(
        "Pipeline modes",
        MODES,
        default=DEFAULTS.modes,
        key="modes",
        help="lean: the engine's own pre- and postprocessing around each runtime. ultralytics: the same exported "
        "model through Ultralytics' predictor, as most users call it. With both, the Overview shows what "
        "the predictor adds.",
    )
    size_column, threads_column, warmup_column, iters_column = st.columns(4)
    imgsz = size_column.number_input("Image size (px)", MIN_IMGSZ, MAX_IMGSZ, DEFAULTS.imgsz, step=32, key="imgsz")
    threads = threads_column.number_input(
        "Threads",
        0,
        api.usable_cpus(),
        DEFAULTS.threads,
        key="threads",
        help=f"0 uses all physical cores; at most this machine's {api.usable_cpus()} logical CPU(s)",
    )
    warmup = warmup_column.number_input(
        "Warm-up iterations",
        0,
        MAX_WARMUP,
        DEFAULTS.warmup,
        key="warmup",
        help="Untimed calls per batch size before measuring: at least 1, and 2 for "
        "TorchScript (its JIT profiles, then optimises)",
    )
    iters = iters_column.number_input(
        "Measured iterations", 1, MAX_ITERS, DEFAULTS.iters, key="iters", help="About 300 make the p99 meaningful"
    )
    if iters < api.MIN_CI_SAMPLES:
        st.warning(f"{iters} iterations are too few for a 95% interval of the median ({api.MIN_CI_SAMPLES} or more): "
                   "the regression watch and Compare give this run no verdict, and stability is not judged.",
                   icon=":material/warning:")  # fmt: skip
    with st.expander("More settings"):
        min_duration = st.number_input(
            "Minimum measuring time per result (s)",
            0.0,
            MAX_MIN_DURATION_S,
            DEFAULTS.min_duration_s,
            key="min_duration",
        )
        timeout = st.number_input(
            "Timeout per export or measurement (s)", 1.0, MAX_TIMEOUT_S, DEFAULTS.timeout_s, key="timeout"
        )
        in_flight = st.number_input(
            "Requests in flight (0: off)",
            0,
            MAX_IN_FLIGHT,
            DEFAULTS.in_flight,
            key="in_flight",
            help="After the one-at-a-time figures, images/s end to end (preprocess, inference, postprocess) "
            "with this many batches at once, where offered (lean OpenVINO: THROUGHPUT hint and an "
            "AsyncInferQueue; lean ONNX Runtime: a session per request; the ultralytics mode: a YOLO model "
            "per thread), for 2 s per result, checked to find the boxes found one at a time. One per core "
            "is a good start.",
        )
        profile = st.checkbox(
            "Profile",
            key="profile",
            help="After everything else, 10 more calls under each runtime's own profiler (ONNX Runtime, OpenVINO, "
            "PyTorch, TorchScript), charged to the model's modules: the Profiles page shows which block runs "
            "slowly on which runtime. It changes none of the measured figures.",
        )
        reference = st.text_input(
            "Parity reference (.pt)",
            key="reference",
            placeholder="the model itself",
            help="Outputs are compared with PyTorch fp32 on this checkpoint, e.g. the "
            "original of an .onnx converted elsewhere",
        )
        labelled_data = st.text_input(
            "Labelled data for mAP",
            key="labelled_data",
            placeholder="none",
            help="A dataset .yaml, or a folder of images with YOLO .txt labels",
        )
        machine_label = st.text_input("Machine label", placeholder="the host name", key="machine_label")
        note = st.text_input("Note", key="note")
    start = st.button("Start run", type="primary", icon=":material/play_arrow:", key="start_run")

if start:
    chosen = [info.name for info in infos if info.available and st.session_state.get(f"runtime-{info.name}")]
    try:
        if model_source == "Upload a model" and model_upload is None:
            raise BenchError("no model uploaded: choose an .onnx file, or pick the default model")
        jobs.check_model_upload(model_upload, st.session_state.get("trust_pt"))
        if images_source == "Upload images" and not image_uploads:
            raise BenchError("no images uploaded: add some, or use the shipped samples")
        model = (
            model_file.strip()
            if model_source == "A local file"
            else jobs.save_upload(model_upload)
            if model_upload
            else DEFAULTS.model
        )
        config = RunConfig(
            model=model,
            runtimes=chosen,
            precisions=precisions,
            batch_sizes=sorted(batch_sizes),
            modes=list(modes),
            images=[jobs.save_upload(upload, own_folder=True) for upload in image_uploads],
            imgsz=int(imgsz),
            warmup=int(warmup),
            iters=int(iters),
            min_duration_s=float(min_duration),
            threads=int(threads),
            timeout_s=float(timeout),
            in_flight=int(in_flight),
            profile=PROFILE_CALLS if profile else 0,
            db=db,
            machine_label=machine_label.strip(),
            note=note.strip(),
            reference=reference.strip(),
            data=labelled_data.strip(),
        )
        jobs.follow(api.start_run(config))
        st.rerun()
    except BenchError as error:
        st.error(str(error))

recent = jobs.recent_jobs()
if not recent.empty:
    with st.expander("Recent jobs on this machine", expanded=not job_id):
        st.dataframe(recent, hide_index=True, key="recent_jobs")
        picked = st.selectbox(
            "Follow a job",
            recent["job"].tolist(),
            index=None,
            key="follow_job",
            placeholder="Choose a job to show its progress or outcome",
        )
        if picked and picked != job_id:
            jobs.follow(picked)
            st.rerun()
