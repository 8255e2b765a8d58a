"""ONNX exports of trained models: the GANimation generator, CAUSE offline and streaming, and their runtime side."""
