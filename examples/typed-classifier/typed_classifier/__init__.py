"""typed-classifier: a nearest-centroid classifier for the native modelaas interface."""
