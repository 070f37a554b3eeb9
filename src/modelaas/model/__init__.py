"""How models are found, described and called."""
