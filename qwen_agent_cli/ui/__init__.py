"""Terminal and output-format front ends; they consume the loop's events and nothing else."""
