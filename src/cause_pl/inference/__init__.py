"""Using trained models: AU estimation from audio of any length, and speech-driven face animation."""
