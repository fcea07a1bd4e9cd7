"""What is learned: the operations mod p, their pairs and labels, a job's split, and how examples are batched.

NumPy only: the config checks and the analysis side read it without the model or tinygrad.
"""
