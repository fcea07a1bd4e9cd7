"""The command-line and job-runner layer: the config schema and its checks, the pre-check of a command line,
what a job needs (memory, devices), the job runner, and the Hydra callbacks. It may import every stage."""
