"""What every layer shares: typed errors, the Job/JobResult wire format, data paths."""
