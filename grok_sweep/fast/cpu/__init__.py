"""tinygrad's CPU device, faster: C kernels with vectors (kernels.py, lookup.py, folded.py), a graph runner that
replays a jitted step without per-launch Python (graph.py), and flushing subnormal floats (denormals.py).

Reached only through grok_sweep.fast (its README states the contract).
"""
