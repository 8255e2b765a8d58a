"""Media files in and out: audio decoding, still face images, mp4 (H.264 + AAC) and image outputs."""
