"""AU-intensity metrics (torchmetrics): per-AU MAE/MSE/PCC/CCC with 95% CIs and baselines, DDP-synced."""
