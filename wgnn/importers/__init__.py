"""Model-format importers: thin maps from a file format onto ``GraphBuilder`` calls."""
