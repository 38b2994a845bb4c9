"""Training: the loop, the run folder it writes (config, checkpoints), and the step benchmark."""
