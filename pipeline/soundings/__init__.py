"""Sounding quality control (one check per function) and vertical interpolation to the
configured pressure levels."""
