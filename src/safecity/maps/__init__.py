"""The console's map: the operator's tiles file served tile by tile, and a base layer from packaged data."""
