"""One TensorBoard event folder per job under DIR/tensorboard: its metrics as scalars at their steps, its config as
text, and the HParams view (the swept keys against final test accuracy and the grokking steps).

Written with the tensorboard package alone (its event writer and protos; no TensorFlow, no PyTorch)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from grok_sweep.export.record import Record
from grok_sweep.export.source import ExportError, JobData, Source, measured
from grok_sweep.store.layout import TENSORBOARD_DIR

RESULTS = ("final_test_acc", "best_test_acc", "memorization_step", "grokking_step")  # the HParams view's metrics
RESULT_TAG = "result/{}"  # their scalars' tags, at a job's last step
CONFIG_TAG = "config"  # the resolved config, a Markdown table in the Text tab
EVENTS_GLOB = "events.out.tfevents.*"
QUEUE = 50_000  # events held for the writer thread at most: bounds memory on a job of very many steps


def load_tensorboard() -> dict[str, Any]:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.hparams import summary_v2 as hp  # its `api` module imports TensorFlow
        from tensorboard.plugins.text import metadata as text
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as err:
        raise ExportError("the TensorBoard export needs the tensorboard package: "
                          "pip install 'grok_sweep[tensorboard]'") from err  # fmt: skip
    return dict(event=event_pb2, summary=summary_pb2, tensor=tensor_pb2, shape=tensor_shape_pb2, types=types_pb2,
                hp=hp, text=text, writer=EventFileWriter)  # fmt: skip


def hparam(value: Any) -> Any:
    """A swept value as the HParams plugin takes it: a bool, a float, or else its text."""
    if isinstance(value, bool):
        return value
    return float(value) if isinstance(value, (int, float)) else str(value)


def config_table(config: dict[str, Any]) -> str:
    """A flattened config as a Markdown table (TensorBoard's Text tab renders it)."""
    return "\n".join(["| key | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in config.items())])


def _text(tb: dict[str, Any], tag: str, text: str) -> Any:
    shape = tb["shape"].TensorShapeProto(dim=[tb["shape"].TensorShapeProto.Dim(size=1)])
    tensor = tb["tensor"].TensorProto(dtype=tb["types"].DT_STRING, string_val=[text.encode()], tensor_shape=shape)
    meta = tb["text"].create_summary_metadata(display_name=tag, description="")
    return tb["summary"].Summary(value=[tb["summary"].Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def _scalars(tb: dict[str, Any], values: dict[str, float]) -> Any:
    return tb["summary"].Summary(value=[tb["summary"].Summary.Value(tag=k, simple_value=v) for k, v in values.items()])


def _write_job(tb: dict[str, Any], folder: Path, job: JobData) -> None:
    # a queue as long as the job's rows (at most QUEUE): adding an event rarely waits for the writer thread
    writer = tb["writer"](str(folder), max_queue_size=min(len(job.metrics) + 8, QUEUE))
    now, event = time.time(), tb["event"].Event
    params = tb["hp"].hparams_pb({k: hparam(v) for k, v in job.swept.items()}, trial_id=job.name)
    writer.add_event(event(wall_time=now, step=0, summary=params))
    writer.add_event(event(wall_time=now, step=0, summary=_text(tb, CONFIG_TAG, config_table(job.config))))
    for step, values in measured(job.metrics):
        writer.add_event(event(wall_time=now, step=step, summary=_scalars(tb, values)))
    results = {RESULT_TAG.format(k): float(job.summary[k]) for k in RESULTS if k in job.summary}
    writer.add_event(event(wall_time=now, step=max(job.last_step, 0), summary=_scalars(tb, results)))
    writer.close()


def _write_experiment(tb: dict[str, Any], out: Path, source: Source) -> None:
    """The HParams view's columns, in the top folder's own event file (its earlier one replaced)."""
    for old in out.glob(EVENTS_GLOB):
        old.unlink()
    hp, params = tb["hp"], []
    for key in source.keys:
        values = {hparam(j.swept[key]) for j in source.jobs if j.swept.get(key) is not None}
        one_type = len({type(v) for v in values}) == 1  # a Discrete domain holds values of one type
        params.append(hp.HParam(key, hp.Discrete(sorted(values)) if one_type else None))
    metrics = [hp.Metric(RESULT_TAG.format(k), display_name=k) for k in RESULTS]
    writer = tb["writer"](str(out))
    writer.add_event(tb["event"].Event(wall_time=time.time(), step=0, summary=hp.hparams_config_pb(params, metrics)))
    writer.close()


def export_tensorboard(source: Source, echo=print) -> list[str]:
    """Write (again) the event folder of every job that changed since the last export; the jobs written."""
    tb = load_tensorboard()
    out = source.folder / TENSORBOARD_DIR
    record = Record(out, "events", echo)
    written = []
    for job in record.changed(source.jobs, "TensorBoard runs"):
        shutil.rmtree(out / job.name, ignore_errors=True)  # a job's events are written whole
        _write_job(tb, out / job.name, job)
        record.save(job.name, fingerprint=job.fingerprint, last_step=job.last_step)
        written.append(job.name)
    if written or not any(out.glob(EVENTS_GLOB)):
        _write_experiment(tb, out, source)
    return written
