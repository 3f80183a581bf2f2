"""Stand-alone tools the project runs for itself (fuzzing, building test peers)."""
