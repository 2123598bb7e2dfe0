"""Speed goals of bayes_mem, each measured against a baseline timed in the same run."""
