"""Gradient ascent on the pixels of an image through a fixed network: objectives, image
parameterisations, transforms, priors, and the loops that use them (rendering, DeepDream). Pure PyTorch:
no I/O, explicit devices and generators, so a seeded run repeats."""
