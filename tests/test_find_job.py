"""A sweep's job found by its swept values (aggregate/lookup.py), on summary tables whose answer is known."""

import pandas as pd
import pytest

from grok_sweep.aggregate.lookup import find_job, parse_values


def _summary():
    rows = [(f"job{i}", tr, wd, seed) for i, (tr, wd, seed) in enumerate(
        [(0.1 + 0.2, 0.1, 0), (0.3, 1.0, 0), (0.5, 0.1, 0), (0.5, 1.0, 0), (0.5, 1.0, 1)])]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["job", "train_ratio", "weight_decay", "seed"])
    return frame.assign(status="completed", phase="grokking")


def test_the_one_job_of_its_values_floats_within_rounding():
    assert find_job(_summary(), {"train_ratio": 0.3, "weight_decay": 0.1}) == "job0"  # 0.30000000000000004 there
    assert find_job(_summary(), parse_values("train_ratio=0.5,weight_decay=1.0,seed=1")) == "job4"


def test_a_miss_names_the_nearest_jobs_and_several_hits_the_keys_to_add():
    with pytest.raises(LookupError, match=r"no job has train_ratio=0.3, weight_decay=2.0; the nearest: "
                                          r"train_ratio=0.3\d*, weight_decay=0.1, seed=0; "):  # fmt: skip
        find_job(_summary(), {"train_ratio": 0.3, "weight_decay": 2.0})
    with pytest.raises(LookupError, match=r"2 jobs have train_ratio=0.5, weight_decay=1.0; say which with seed"):
        find_job(_summary(), {"train_ratio": 0.5, "weight_decay": 1.0})
    with pytest.raises(LookupError, match=r"lr: not swept in this sweep; its swept keys: train_ratio, weight_decay"):
        find_job(_summary(), {"lr": 0.1})


def test_a_name_is_read_as_values_only_in_the_key_value_form():
    assert parse_values("loss=stablemax,seed=2") == {"loss": "stablemax", "seed": 2}
    for bad in ("", "seed", "seed=1,", "=1"):
        with pytest.raises(ValueError, match="not of the form key=value"):
            parse_values(bad)
