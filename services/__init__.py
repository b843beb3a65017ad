"""Vroegsignaal: event-driven early warning for continuity risks in crucial ggz."""

__version__ = "0.1.0"
