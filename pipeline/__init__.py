"""sentiment-pipeline: configuration, pipeline wiring, runners and the command line."""
