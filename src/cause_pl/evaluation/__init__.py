"""Evaluation beyond training: the paper's Table 1, GANimation's objective scores, and figures."""
