"""The `tuneforge` command line: run the pipeline, one stage, the registry."""
