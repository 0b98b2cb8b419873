"""The fleet as the domain sees it: a speaker and its facts (`model`), the verdict families
(`verdict`), what happened (`events`), the fleet state every source feeds (`state`), and how
a speaker is described and found (`describe`, `lookup`). Pure: time comes in as data."""
