"""The log-mel frontend: the one feature extractor shared by recipes, training and inference."""
