"""Aligning the fleet (issue 14): per-speaker delay stages behind one fleet output, set from
what the microphone hears, corrected round by round until the spread is within target.

`plan` is pure (numbers in, numbers out); `stages` talks to the audio server (`pactl`);
`measure` plays through the fleet output and finds each speaker's arrival; `loop` runs the
rounds (blocking: call it from a thread)."""
