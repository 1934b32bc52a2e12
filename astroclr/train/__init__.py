"""Training with Lightning: model, loader, schedule, devices, trainer, process launch."""
