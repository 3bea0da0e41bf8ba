-- The warehouse layers (outputs.md §1). ops.schema_migration is created by skadestue.db.migrate.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS quality;
CREATE SCHEMA IF NOT EXISTS ops;
-- Reference geodata (skadestue geodata import): addresses, roads, junctions, boundaries.
CREATE SCHEMA IF NOT EXISTS gazetteer;
