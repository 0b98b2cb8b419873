"""Widgets: each renders what its parent sets on it and never calls the system."""
