"""Screens pushed over the main view: help and speaker detail."""
