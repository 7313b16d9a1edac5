"""A BullMQ worker: its handle, slot loop, commands, attempts, wait for work and maintenance."""
