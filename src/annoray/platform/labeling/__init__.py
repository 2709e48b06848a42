"""The labeling domain: projects and their labeling configs, tasks and completions, which completion trains
(selection), datasets and splits, import and export, rules, and predictions in Label Studio's shape."""
