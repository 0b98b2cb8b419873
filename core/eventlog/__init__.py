"""The event log that loses nothing: the SQLite store (`store`), what it tells the app (disk
full, a lock: `signals`) and the replay of a log as a source (`replay`)."""
