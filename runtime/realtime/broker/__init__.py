"""The broker's jobs, which `runtime/realtime_broker.py` ties together."""
