"""One run: its directory, training → embedding → evaluation, resume, report and trained model."""
