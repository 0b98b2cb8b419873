"""Tests of the probe DSP: WAV I/O, probe signals, the simulated room and arrival analysis."""
