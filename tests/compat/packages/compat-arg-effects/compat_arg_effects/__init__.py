"""Compatibility corpus: what get_predict_args()/get_train_args() do to the module they live in."""
