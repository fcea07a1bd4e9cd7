"""The run folder on disk: every file name and status word (layout.py), and reading and writing a job's files.

Light on purpose: nothing here imports tinygrad or the model, so reading results stays fast (the weights'
tensors are read and written by train/checkpoint.py and the API).
"""
