"""Running the app: a supervisor process and its serving processes."""
