"""WebDataset shards: the sample schema, index.json, parallel resumable writing, tar reading, shard URLs."""
