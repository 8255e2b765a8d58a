"""Errors of face detection that the command line reports without importing OpenCV."""


class DetectorUnavailableError(RuntimeError):
    """The installed OpenCV has no Haar cascades (OpenCV 5 moved them out of the main package)."""
