"""The main job on built-in synthetic data (``cause-pl demo``): corpora, training, evaluation, animation."""
