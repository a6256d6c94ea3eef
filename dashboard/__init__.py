"""What the dashboard pages share: cached reads of the engine API, the sidebar, charts, images and the report.

Nothing here imports a runtime library: the server process reads DuckDB and starts engine processes.
"""
