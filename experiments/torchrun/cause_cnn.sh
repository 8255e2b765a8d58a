#!/usr/bin/env bash
# CAUSE CNN with DDP under torchrun (no SLURM): start this script once on every node. torchrun sets
# RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT through the c10d rendezvous and Lightning detects
# TorchElasticEnvironment from them, so each process trains on one device.
#   # 2 nodes x 8 GPUs: on each node, the same RDZV_ENDPOINT (a host:port on the first node) and RDZV_ID
#   NNODES=2 NPROC_PER_NODE=8 RDZV_ENDPOINT=node01:29400 RDZV_ID=cnn-01 experiments/torchrun/cause_cnn.sh
#   # one machine, all its GPUs; any further arguments are LightningCLI overrides
#   experiments/torchrun/cause_cnn.sh --trainer.max_epochs=40
#   # CPU only, 2 processes (gloo)
#   NPROC_PER_NODE=2 experiments/torchrun/cause_cnn.sh --trainer.accelerator=cpu
# EDIT: SHARDS (storage every node can read), or set the variables on the command line as above.
# batch_size is per process: the global batch is batch_size x NNODES x NPROC_PER_NODE.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARDS=${CAUSE_PL_SHARDS:-/shared/datasets/cause-pl/voxceleb2}  # EDIT: index.json + speech_au-*.tar
CONFIGS=${CAUSE_PL_CONFIGS:-"$REPO/experiments/cause/voxceleb2.yaml $REPO/experiments/cause/cnn.yaml"}  # base + architecture overlay
CONFIG_ARGS=()
for config in $CONFIGS; do CONFIG_ARGS+=(--config "$config"); done
VENV=${CAUSE_PL_VENV:-$REPO/.venv}  # the environment with cause-pl installed, if not already active
if [[ -d $VENV/bin ]]; then export PATH="$VENV/bin:$PATH"; fi

NNODES=${NNODES:-1}
NPROC_PER_NODE=${NPROC_PER_NODE:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l)}  # default: the node's GPUs
if (( NPROC_PER_NODE < 1 )); then
    echo "cause_cnn.sh: no GPU found; set NPROC_PER_NODE (and pass --trainer.accelerator=cpu for CPU)" >&2
    exit 2
fi
RDZV_ENDPOINT=${RDZV_ENDPOINT:-localhost:29400}
RDZV_ID=${RDZV_ID:-cause-cnn}

exec torchrun --nnodes="$NNODES" --nproc-per-node="$NPROC_PER_NODE" \
    --rdzv-backend=c10d --rdzv-endpoint="$RDZV_ENDPOINT" --rdzv-id="$RDZV_ID" \
    -m cause_pl.cli.main fit "${CONFIG_ARGS[@]}" \
    --data.init_args.root="$SHARDS" \
    --trainer.num_nodes="$NNODES" \
    --trainer.devices="$NPROC_PER_NODE" \
    --trainer.strategy=ddp \
    "$@"
