import threading

import numpy as np
import pandas as pd

from grok_sweep.store.metrics import read_metrics
from grok_sweep.train.metrics_log import MetricsLog
from grok_sweep.util.files import atomic_write


def _table(steps: int) -> pd.DataFrame:
    log = MetricsLog(steps)
    log.add_train(np.random.default_rng(steps).random((steps, 2)))
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
