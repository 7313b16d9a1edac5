"""bullmq."""
