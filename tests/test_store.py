import threading

import numpy as np
import pandas as pd
import pytest

from grok_sweep.store.layout import TRAIN_COLS
from grok_sweep.store.metrics import read_metrics
from grok_sweep.train.metrics_log import MetricsLog
from grok_sweep.util.files import atomic_write


def _table(steps: int) -> pd.DataFrame:
    log = MetricsLog(steps)
    log.add_train(np.random.default_rng(steps).random((steps, len(TRAIN_COLS))))
    return log.block_table().to_pandas()


def test_metrics_read_while_their_job_replaces_them_are_whole(tmp_path):
    # the aggregator reads a running sweep: a reader must see one whole version, never one's footer with another's pages
    path = tmp_path / "metrics.parquet"
    versions = [_table(n) for n in (50, 400)]
    atomic_write(path, lambda tmp: versions[0].to_parquet(tmp))
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            version = versions[i % 2]
            atomic_write(path, version.to_parquet)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        lengths = {len(read_metrics(path)) for _ in range(300)}
    finally:
        stop.set()
        thread.join()
    assert lengths <= {50, 400}


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((3, 5)).astype(np.float32),
        "counter": np.array(7, dtype=np.int32),
        "b": rng.standard_normal(4),  # float64
        "mask": np.array([True, False]),
        "idx": np.arange(6, dtype=np.int64).reshape(2, 3),
        "h": np.linspace(0, 1, 3, dtype=np.float16),
    }


def test_safetensors_files_are_read_both_ways_with_tinygrad(tmp_path):
    # written from numpy so a GPU job needs no CPU compiler; tinygrad reads ours, and we read tinygrad's safe_save
    # files, which are byte for byte those earlier versions of grok_sweep wrote
    from tinygrad import Tensor
    from tinygrad.nn.state import safe_load, safe_save

    from grok_sweep.store import safetensors

    arrays = _arrays()
    meta = {"grok_sweep": '{"step": 3}'}
    safe_save({k: Tensor(v, device="CPU") for k, v in arrays.items()}, str(tmp_path / "tiny.safetensors"), meta)
    safetensors.write(tmp_path / "ours.safetensors", arrays, meta)
    loaded = safe_load(str(tmp_path / "ours.safetensors"))
    theirs = safetensors.read(tmp_path / "tiny.safetensors")
    assert safetensors.metadata(tmp_path / "tiny.safetensors") == meta
    for k, v in arrays.items():
        np.testing.assert_array_equal(loaded[k].to("CPU").numpy(), v)
        assert theirs[k].dtype == v.dtype and theirs[k].shape == v.shape
        np.testing.assert_array_equal(theirs[k], v)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda b: b"", r"empty \(0 bytes\)"),
    (lambda b: b[:5], "header too small"),
    (lambda b: b[:-3], "incomplete metadata, file not fully covered"),
    (lambda b: b"\xff" * 8 + b[8:], "header too large"),
])  # fmt: skip
def test_a_damaged_safetensors_file_is_refused_with_its_reason(tmp_path, damage, reason):
    from grok_sweep.store import safetensors
    from grok_sweep.store.damage import Damaged
    from grok_sweep.store.integrity import check_safetensors

    path = tmp_path / "model.safetensors"
    safetensors.write(path, _arrays(), {"k": "v"})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(Damaged, match=reason):
        check_safetensors(path)
    with pytest.raises(Exception, match=reason):
        safetensors.read(path)


def test_safetensors_read_gives_back_every_array_and_the_header_its_metadata(tmp_path):
    from grok_sweep.store import safetensors

    arrays, path = _arrays(), tmp_path / "x.safetensors"
    safetensors.write(path, arrays, {"k": "v"})
    back = safetensors.read(path)
    assert sorted(back) == sorted(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
        assert back[k].flags.writeable  # a copy, not a view of the file's bytes
    assert safetensors.metadata(path) == {"k": "v"}
