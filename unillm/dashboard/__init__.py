"""The Streamlit dashboard (issue 6) and the SQL it runs."""
