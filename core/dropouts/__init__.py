"""Dropouts: the live detector (`detector`), each speaker's dropout history and its period
(`history`, `period`), and the report over a log (`report`)."""
