"""Fast CPU kernels behind one seam, each with a reference twin."""
