"""Running experiments: ``lra-data`` (prepare a task's data) and ``lra-train`` (one run or a
sweep), the training loop and what it needs (batches, schedules, checkpoints, DDP, preemption,
logging, the result record)."""
