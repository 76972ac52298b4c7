"""Amazon Bedrock batch inference: jobs, records, and a translation per model family."""
