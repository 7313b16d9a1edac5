"""How the BullMQ adapter talks to Redis: connections, pipelines, Lua scripts, error translation."""
