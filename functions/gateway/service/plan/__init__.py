"""A gateway batch as a plan of provider batches ("parts"): split, run the parts, merge."""
