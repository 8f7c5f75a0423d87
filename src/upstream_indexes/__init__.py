"""Adds, proves and takes back the upstream app's covering indexes without blocking writes."""
