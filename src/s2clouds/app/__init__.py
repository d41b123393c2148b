"""The assisted annotation app (``s2clouds annotate serve``): a project of images, a canvas
front end, the pixel model as assistant, saves per user and image, export and agreement."""
