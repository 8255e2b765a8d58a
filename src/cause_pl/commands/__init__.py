"""Commands of ``cause-pl`` beside the LightningCLI ones (each module: one command)."""
