"""Training scripts for the learned models (``face2scene train fadex|restorer``)."""
