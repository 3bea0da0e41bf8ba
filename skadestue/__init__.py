"""skadestue: traffic injuries from emergency wards and police reports -> hotspot layers."""

import os as _os

# DuckDB's allocator (jemalloc) keeps freed pages for 10 s by default, so the ingest's
# temporary tables stay resident through the inserts and the core build that follow: 1M ER
# rows in memory peaked at 2.0-2.3 GB. Given back after 200 ms, the peak is 1.75 GB at no
# measured cost in time (bench/bench_ingest.py; 0 ms cost 8 % more time). Read when DuckDB
# loads, so it is set before any module imports duckdb; an operator's own setting wins.
_os.environ.setdefault("DUCKDB_JE_MALLOC_CONF", "dirty_decay_ms:200,muzzy_decay_ms:0")
