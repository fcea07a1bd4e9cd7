"""The metrics log: one block in memory whatever `steps` is, flushed to parts that read back as one table."""

import numpy as np
import pandas as pd
import pytest

from grok_sweep.store.layout import METRICS_FILE
from grok_sweep.store.metrics import read_metrics
from grok_sweep.train.metrics_log import MetricsLog, write_metrics


def _train_rows(start: int, end: int) -> np.ndarray:
    steps = np.arange(start, end, dtype=float)
    return np.c_[steps, 1 / (steps + 1), steps % 2, steps % 3, 1e-3 / (steps + 1)]  # TRAIN_COLS: a value per step


def _fill(log: MetricsLog, every: int, upto: int) -> None:
    """Feed `log` as the trainer does: train rows fetched in pieces at eval steps, an eval row at each."""
    for s in range(log.filled, upto):
        if s % every == 0:
            log.add_train(_train_rows(log.filled, s))
            # EVAL_COLS, 2 layer norms, MEASURE_COLS, 5 key-frequency flags
            log.add_eval(s, np.r_[s, s / 7, s + 0.5, 1 / (s + 2), s + 1, s + 3, s * 2, -s, s % 3,
                                  [(s >> k) & 1 for k in range(5)]])  # fmt: skip
    log.add_train(_train_rows(log.filled, upto))


def _reference(steps: int, every: int) -> pd.DataFrame:
    log = MetricsLog(steps, n_freqs=5, block=10**9, n_layers=2)  # every row in memory
    _fill(log, every, steps)
    return log.frame()


def test_blocks_go_to_disk_as_they_fill_and_read_back_as_one_table(tmp_path):
    log = MetricsLog(1000, n_freqs=5, block=64, n_layers=2)
    log.attach(tmp_path)
    _fill(log, 7, 1000)
    assert log.cols["train_loss"].shape == (64,)  # host memory: one block, not 1000 rows
    parts = sorted((tmp_path / METRICS_FILE).glob("part-*.parquet"))
    assert len(parts) == 1000 // 64  # the full blocks; the last, partial one is written by write_metrics
    write_metrics(log, tmp_path)
    want = _reference(1000, 7)
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), want)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / METRICS_FILE), want)  # as a user reads it
    pd.testing.assert_frame_equal(log.frame(), want)


@pytest.mark.parametrize("at", [0, 64, 100, 128, 999])  # block boundaries and the middle of a block
def test_restore_continues_from_any_step_as_if_never_stopped(tmp_path, at):
    first = MetricsLog(1000, n_freqs=5, block=64, n_layers=2)
    first.attach(tmp_path)
    _fill(first, 7, min(at + 150, 1000))  # it ran past its checkpoint at `at`, then was killed
    write_metrics(first, tmp_path)
    again = MetricsLog(1000, n_freqs=5, block=64, n_layers=2)
    again.restore(tmp_path, at)
    whole = _reference(1000, 7)
    before = whole[whole["step"] < at]
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), before, check_dtype=len(before) > 0)
    _fill(again, 7, 1000)
    write_metrics(again, tmp_path)
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), whole)


def test_a_single_file_from_before_parts_is_read_and_resumed(tmp_path):
    whole = _reference(300, 7)
    whole.to_parquet(tmp_path / METRICS_FILE)  # the layout of grok_sweep before blocks
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), whole)
    log = MetricsLog(300, n_freqs=5, block=64, n_layers=2)
    log.restore(tmp_path, 200)
    assert (tmp_path / METRICS_FILE).is_dir()
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), whole[whole["step"] < 200])
    _fill(log, 7, 300)
    write_metrics(log, tmp_path)
    pd.testing.assert_frame_equal(read_metrics(tmp_path / METRICS_FILE), whole)


def test_eval_values_land_in_their_columns():
    log = MetricsLog(20, n_freqs=5, n_layers=2)
    _fill(log, 7, 20)
    row = log.frame().set_index("step").loc[14]
    assert (row["test_loss"], row["test_acc"], row["weight_norm"], row["ipr"]) == (14, 2, 14.5, 1 / 16)
    assert list(row["layer_norms"]) == [15, 17]
    assert (row["restricted_loss"], row["excluded_loss"], row["fourier_gini"]) == (28, -14, 2)
    assert list(row["key_freqs"]) == [2, 3, 4] and row["n_key_freqs"] == 3  # 14 = 0b01110
    assert log.frame().set_index("step").loc[13, "layer_norms"] is None  # not an eval step
