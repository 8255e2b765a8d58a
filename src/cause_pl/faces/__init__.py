"""Faces found and aligned: OpenCV's bundled Haar cascades, and the eye-based similarity crop
(*docs/design.md, "Face alignment"*)."""
