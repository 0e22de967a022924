"""The sync engine: one API (:class:`GlanceSync`) that the CLI and the REST service both call."""

from .engine import GlanceSync

__all__ = ["GlanceSync"]
