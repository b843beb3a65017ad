"""Tests of the event backbone."""
