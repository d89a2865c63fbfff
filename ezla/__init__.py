"""ezla: an open re-implementation of the Polish electronic sick-leave system (e-ZLA)."""

__version__ = "0.1.0"
