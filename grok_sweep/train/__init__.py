"""One job's training: the Trainer (trainer.py) and its loop (loop.py), the gradient filters (grokfast.py),
early stopping, the metrics rings on the device and the log they fill, the job's progress and its files.

The model and the speed code come from grok_sweep.model and grok_sweep.fast (the speed code's one interface).
"""
