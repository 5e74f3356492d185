"""Trajectory data: the on-the-fly maze window generator, safetensors shards, `worldsim record`."""
