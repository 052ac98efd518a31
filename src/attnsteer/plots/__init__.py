"""Figures (matplotlib, an optional extra: `pip install attnsteer[plots]`)."""
