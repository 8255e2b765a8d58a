"""W&B sweep files run locally and offline: the sweep schema and an agent that launches the runs."""
