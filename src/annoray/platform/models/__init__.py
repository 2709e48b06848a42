"""Models and deployment: the model catalog, training parameters and logs, how training jobs end, deploy after
training (the labeling config rewritten behind a gate), and active-learning triggers."""
