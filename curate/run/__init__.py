"""Running the commands: the ingest (datatrove stage 1 and the load into the store), the store commands and
``run``, executors (local, Slurm, Ray), shard writing and progress."""
