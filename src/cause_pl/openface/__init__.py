"""OpenFace 2 CSVs: reading every layout the tools write, aligning rows to mel frames, writing AU tracks."""
