"""Ray Serve deployments: the pre-annotation server (at most five models, rules) and prediction
post-processing. May import `annoray.platform` and `annoray.trainers`."""
