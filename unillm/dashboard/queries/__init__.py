"""The SQL behind each dashboard page. Every aggregate runs in DuckDB; Python only receives the
few rows a chart or table shows. Nothing here imports streamlit."""
