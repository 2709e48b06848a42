"""The scheduler actor: resources and license seats, the job queue, launching Ray Train runs and
Serve apps, active-learning triggers, recovery. May import platform, trainers and serve_apps."""
