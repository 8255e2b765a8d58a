"""Procedural corpora with exact ground truth: speech + AU tracks, faces + AUs, written as shards."""
