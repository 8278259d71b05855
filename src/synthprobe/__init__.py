"""synthprobe: a synthetic availability prober that says what is down, and why."""

__version__ = "0.1.0"
