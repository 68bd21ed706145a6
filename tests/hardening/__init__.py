"""Attacks, floods, outages, faults, fuzzing, leaks and load."""
