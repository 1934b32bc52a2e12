"""Built-in astroclr plugin: self-supervised methods (SimCLR, MoCo, BYOL, VICReg, Barlow Twins,
DINO), each assembled from lightly's heads, losses and utilities."""
