"""Three-in-one (三位一体) data layer: catalog, identifiers, ingest, quality."""
